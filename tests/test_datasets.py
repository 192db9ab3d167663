"""pipelines.datasets: shipped checksum lists and `data fetch` from file:// sources (no internet).

References: hashlib over the bundled, byte-identical copies in data/ (and over the shared
texture-vs-shape checkout when present), the published counts (1,280 / 160 / 160).
"""

from __future__ import annotations

import hashlib
import shutil
import socket
from collections import Counter
from pathlib import Path

import pytest

from shared_data import DATA, SHARED_DATA
from pipelines.datasets import (
    DATASETS,
    UPSTREAM_COMMIT,
    ChecksumError,
    DatasetError,
    DownloadError,
    default_cache_dir,
    fetch_dataset,
    list_datasets,
    read_checksums,
)

SHARED_STIMULI = SHARED_DATA / "texture-vs-shape" / "stimuli"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_registry():
    assert list_datasets() == ["cue-conflict", "edges", "filled-silhouettes"]
    assert DATASETS["cue-conflict"].folder == "style-transfer-preprocessed-512"
    assert UPSTREAM_COMMIT == "ccd0c01d42c0a8a834e90ec141e7f24fa915dc23"
    with pytest.raises(DatasetError, match="cue-conflict"):
        fetch_dataset("imagenet")


@pytest.mark.parametrize(("name", "n"), [("cue-conflict", 1280), ("edges", 160), ("filled-silhouettes", 160)])
def test_checksum_lists_have_the_published_counts(name, n):
    entries = read_checksums(name)
    assert len(entries) == n == len({e.path for e in entries})
    per_folder = Counter(e.path.split("/")[0] for e in entries)
    assert len(per_folder) == 16 and set(per_folder.values()) == {n // 16}


@pytest.mark.parametrize("name", ["cue-conflict", "edges", "filled-silhouettes"])
def test_bundled_copies_match_the_checksum_lists(name):
    """data/ is byte-identical to upstream: every bundled file is listed with its sha256 and size."""
    listed = {e.path: e for e in read_checksums(name)}
    files = sorted((DATA / name).glob("*/*.png"))
    assert len(files) == {"cue-conflict": 240, "edges": 160, "filled-silhouettes": 160}[name]
    for f in files:
        entry = listed[f"{f.parent.name}/{f.name}"]
        assert (entry.sha256, entry.size) == (sha256(f), f.stat().st_size)


@pytest.mark.shared_data("texture-vs-shape/stimuli")
def test_checksum_lists_match_the_upstream_checkout():
    for name, spec in DATASETS.items():
        listed = {e.path: (e.sha256, e.size) for e in read_checksums(name)}
        folder = SHARED_STIMULI / spec.folder
        actual = {
            f"{f.parent.name}/{f.name}": (sha256(f), f.stat().st_size) for f in folder.glob("*/*")
        }
        assert actual == listed, name


@pytest.mark.parametrize(
    "where", ["bundled", pytest.param("shared", marks=pytest.mark.shared_data("texture-vs-shape/stimuli/edges"))]
)
def test_fetch_edges_from_file_url_and_resume(tmp_path, where):
    # data/edges is the complete, byte-identical edges set; the shared checkout is upstream's layout
    source = DATA if where == "bundled" else SHARED_STIMULI
    calls: list[tuple[int, int, str]] = []
    out = fetch_dataset(
        "edges", cache_dir=tmp_path, base_url=source.as_uri(), progress=lambda *a: calls.append(a)
    )
    assert out == tmp_path / "edges"
    fetched = sorted(p.relative_to(out).as_posix() for p in out.glob("*/*.png"))
    assert fetched == sorted(p.relative_to(source / "edges").as_posix() for p in (source / "edges").glob("*/*.png"))
    for rel in fetched:
        assert (out / rel).read_bytes() == (source / "edges" / rel).read_bytes()
    assert len(calls) == 160 and calls[-1][:2] == (160, 160)
    assert sorted(c[0] for c in calls) == list(range(1, 161))
    assert not [p for p in out.rglob(".*")]  # no temporary files left
    assert "CC BY 4.0" in (out / "SOURCE.txt").read_text()

    # resume: everything is verified from the cache, nothing is downloaded (the source is gone)
    assert fetch_dataset("edges", cache_dir=tmp_path, base_url=(tmp_path / "gone").as_uri()) == out

    # a deleted and a damaged file are fetched again, and only those
    (out / "cat" / "cat1.png").unlink()
    (out / "dog" / "dog2.png").write_bytes(b"damaged")
    moved = tmp_path / "src"
    (moved / "edges").mkdir(parents=True)
    for rel in ("cat/cat1.png", "dog/dog2.png"):
        (moved / "edges" / rel).parent.mkdir(exist_ok=True)
        shutil.copyfile(source / "edges" / rel, moved / "edges" / rel)
    fetch_dataset("edges", cache_dir=tmp_path, base_url=moved.as_uri())
    assert sha256(out / "cat" / "cat1.png") == sha256(source / "edges" / "cat" / "cat1.png")
    assert sha256(out / "dog" / "dog2.png") == sha256(source / "edges" / "dog" / "dog2.png")


def test_corrupted_source_file_is_rejected(tmp_path):
    source = tmp_path / "src"
    shutil.copytree(DATA / "filled-silhouettes", source / "filled-silhouettes")
    bad = source / "filled-silhouettes" / "bear" / "bear3.png"
    data = bytearray(bad.read_bytes())
    data[100] ^= 0xFF
    bad.write_bytes(bytes(data))
    expected = sha256(DATA / "filled-silhouettes" / "bear" / "bear3.png")
    cache = tmp_path / "cache"
    with pytest.raises(ChecksumError) as info:
        fetch_dataset("filled-silhouettes", cache_dir=cache, base_url=source.as_uri(), workers=2)
    message = str(info.value)
    assert "bear/bear3.png" in message and expected in message and sha256(bad) in message
    target = cache / "filled-silhouettes"
    assert not (target / "bear" / "bear3.png").exists()
    assert not [p for p in target.rglob(".*")]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("kind", ["refused", "missing-dir"])
def test_offline_gives_one_clear_message(tmp_path, kind):
    base = f"http://127.0.0.1:{free_port()}/stimuli" if kind == "refused" else (tmp_path / "no").as_uri()
    with pytest.raises(DownloadError) as info:
        fetch_dataset("edges", cache_dir=tmp_path, base_url=base, timeout=5)
    message = str(info.value)
    assert base + "/edges/" in message
    assert "copy a local checkout's stimuli folder and pass it as a path" in message
    assert message.count("could not download") == 1


def test_default_cache_dir_follows_texprobe_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TEXPROBE_CACHE", str(tmp_path / "tc"))
    assert default_cache_dir() == tmp_path / "tc" / "datasets"
    out = fetch_dataset("edges", base_url=DATA.as_uri())
    assert out == tmp_path / "tc" / "datasets" / "edges"
    assert len(list(out.glob("*/*.png"))) == 160
    monkeypatch.delenv("TEXPROBE_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "texprobe" / "datasets"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert default_cache_dir() == Path.home() / ".cache" / "texprobe" / "datasets"
