"""Public datasets for ``texprobe data fetch NAME``: download into a local cache, sha256-checked.

The datasets are the stimuli of Geirhos et al., "ImageNet-trained CNNs are biased towards
texture; increasing shape bias improves accuracy and robustness", ICLR 2019, from
https://github.com/rgeirhos/texture-vs-shape at a pinned commit, licensed CC BY 4.0. The expected
sha256 and size of every file ship with texprobe (``pipelines/resources/<name>.sha256.tsv``),
so a download is verified file by file and a changed upstream file is refused.

Cache: ``<cache_dir>/<name>/<category>/<file>``. ``cache_dir`` defaults to
``$TEXPROBE_CACHE/datasets`` if ``TEXPROBE_CACHE`` is set, else
``$XDG_CACHE_HOME/texprobe/datasets`` (``~/.cache/texprobe/datasets``). Files already present
with the right sha256 are not downloaded again, so an interrupted fetch resumes.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import os
import secrets
import socket
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "DATASETS",
    "DEFAULT_BASE_URL",
    "UPSTREAM_COMMIT",
    "UPSTREAM_REPO",
    "ChecksumError",
    "DatasetEntry",
    "DatasetError",
    "DatasetSpec",
    "DownloadError",
    "default_cache_dir",
    "fetch_dataset",
    "list_datasets",
    "read_checksums",
]

UPSTREAM_REPO = "rgeirhos/texture-vs-shape"
UPSTREAM_COMMIT = "ccd0c01d42c0a8a834e90ec141e7f24fa915dc23"
#: Default base URL; a file is at ``<base_url>/<folder>/<category>/<file>``.
DEFAULT_BASE_URL = (
    f"https://raw.githubusercontent.com/{UPSTREAM_REPO}/{UPSTREAM_COMMIT}/stimuli"
)
_RESOURCES = Path(__file__).resolve().parent / "resources"
_OFFLINE_HINT = (
    "If this machine is offline, copy a local checkout's stimuli folder and pass it as a path "
    "(a clone of github.com/rgeirhos/texture-vs-shape has it under stimuli/{folder})."
)


class DatasetError(RuntimeError):
    """A dataset could not be fetched or is unknown."""


class DownloadError(DatasetError):
    """A file could not be downloaded (offline, HTTP error, timeout)."""


class ChecksumError(DatasetError):
    """A downloaded file does not have the expected sha256 or size; it was not kept."""


@dataclass(frozen=True)
class DatasetSpec:
    """A fetchable dataset: where it lives upstream and what it holds.

    ``name`` is what ``texprobe data fetch`` takes and the folder the files go to in the cache; ``folder``
    is where they are upstream (``stimuli/<folder>/<category>/<file>``).
    """

    name: str
    folder: str
    description: str
    licence: str = "CC BY 4.0"
    source: str = f"https://github.com/{UPSTREAM_REPO} @ {UPSTREAM_COMMIT[:12]}"

    @property
    def checksum_file(self) -> Path:
        """The shipped ``<name>.sha256.tsv`` listing (sha256, size, path) of every file."""
        return _RESOURCES / f"{self.name}.sha256.tsv"


@dataclass(frozen=True)
class DatasetEntry:
    """One file of a dataset: its path relative to the dataset folder, size and sha256."""

    path: str
    size: int
    sha256: str


DATASETS: dict[str, DatasetSpec] = {
    spec.name: spec
    for spec in (
        DatasetSpec(
            "cue-conflict",
            "style-transfer-preprocessed-512",
            "1,280 texture-shape cue-conflict stimuli (16 x 80, 224x224 PNG; 1,200 with conflict)",
        ),
        DatasetSpec("edges", "edges", "160 edge-only versions of the content images (224x224 PNG)"),
        DatasetSpec(
            "filled-silhouettes",
            "filled-silhouettes",
            "160 filled black silhouettes of the content images (224x224 PNG)",
        ),
    )
}


def list_datasets() -> list[str]:
    """Names of the fetchable datasets, sorted; details in :data:`DATASETS`."""
    return sorted(DATASETS)


def _spec(name: str) -> DatasetSpec:
    if name not in DATASETS:
        raise DatasetError(f"unknown dataset {name!r}; available: {', '.join(list_datasets())}")
    return DATASETS[name]


def read_checksums(name: str) -> list[DatasetEntry]:
    """The shipped file list of dataset ``name`` (header ``sha256<TAB>size<TAB>path``)."""
    spec = _spec(name)
    entries = []
    with open(spec.checksum_file, encoding="utf-8") as f:
        header = f.readline().rstrip("\n").split("\t")
        if header != ["sha256", "size", "path"]:
            raise DatasetError(f"{spec.checksum_file}: unexpected header {header}")
        for line in f:
            if line.strip():
                sha, size, path = line.rstrip("\n").split("\t")
                entries.append(DatasetEntry(path=path, size=int(size), sha256=sha))
    return entries


def default_cache_dir() -> Path:
    """``$TEXPROBE_CACHE/datasets``, else ``$XDG_CACHE_HOME/texprobe/datasets`` or
    ``~/.cache/texprobe/datasets``."""
    if os.environ.get("TEXPROBE_CACHE"):
        return Path(os.environ["TEXPROBE_CACHE"]).expanduser() / "datasets"
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join("~", ".cache")
    return Path(xdg).expanduser() / "texprobe" / "datasets"


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _is_valid(path: Path, entry: DatasetEntry) -> bool:
    try:
        if path.stat().st_size != entry.size:
            return False
    except FileNotFoundError:
        return False
    return _file_sha256(path) == entry.sha256


def _download(url: str, target: Path, entry: DatasetEntry, *, timeout: float, hint: str) -> None:
    """Fetch ``url`` to a hidden temporary file, verify it, then rename it to ``target``."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".{target.name}.tmp-{secrets.token_hex(4)}"
    digest = hashlib.sha256()
    size = 0
    try:
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response, open(tmp, "wb") as out:
                for chunk in iter(lambda: response.read(1 << 16), b""):
                    digest.update(chunk)
                    size += len(chunk)
                    out.write(chunk)
        except (urllib.error.URLError, TimeoutError, socket.timeout, ConnectionError) as exc:
            reason = getattr(exc, "reason", exc)
            raise DownloadError(f"could not download {url}: {reason}. {hint}") from exc
        got = digest.hexdigest()
        if got != entry.sha256 or size != entry.size:
            raise ChecksumError(
                f"checksum mismatch for {entry.path} (from {url}): expected sha256 {entry.sha256} "
                f"({entry.size} bytes), got {got} ({size} bytes); the file was not kept. "
                "The upstream file may have changed or the download was corrupted; retry, or "
                "report it if it persists."
            )
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


def fetch_dataset(
    name: str,
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    base_url: str | None = None,
    progress: Callable[[int, int, str], None] | None = None,
    timeout: float = 30.0,
    workers: int = 8,
) -> Path:
    """Download dataset ``name`` into the cache (skipping verified files); returns its folder.

    Args:
        name: one of :func:`list_datasets` (``cue-conflict``, ``edges``, ``filled-silhouettes``).
        cache_dir: folder that holds the datasets (default :func:`default_cache_dir`); the files
            go to ``<cache_dir>/<name>/<category>/<file>``.
        base_url: replaces the pinned GitHub raw URL; files are read from
            ``<base_url>/<folder>/<category>/<file>`` (e.g. ``file:///path/to/stimuli``).
        progress: called as ``progress(done, total, path)`` after each file is present.
        timeout: seconds per request.
        workers: parallel downloads.

    Raises:
        DownloadError: a file could not be fetched (one message, the first failure).
        ChecksumError: a fetched file has the wrong sha256 or size (it is deleted).
    """
    spec = _spec(name)
    if workers < 1:
        raise DatasetError(f"workers must be >= 1, got {workers}")
    entries = read_checksums(name)
    root = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    target_dir = root / name
    target_dir.mkdir(parents=True, exist_ok=True)
    base = (base_url or DEFAULT_BASE_URL).rstrip("/")
    total = len(entries)
    done = 0

    def tick(path: str) -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, total, path)

    missing = []
    for entry in entries:
        if _is_valid(target_dir / entry.path, entry):
            tick(entry.path)
        else:
            missing.append(entry)

    if missing:
        with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
            futures = {
                pool.submit(
                    _download,
                    f"{base}/{spec.folder}/{entry.path}",
                    target_dir / entry.path,
                    entry,
                    timeout=timeout,
                    hint=_OFFLINE_HINT.format(folder=spec.folder),
                ): entry
                for entry in missing
            }
            try:
                for future in concurrent.futures.as_completed(futures):
                    future.result()
                    tick(futures[future].path)
            except BaseException:
                for future in futures:
                    future.cancel()
                raise

    _write_source_note(target_dir, spec)
    return target_dir


def _write_source_note(target_dir: Path, spec: DatasetSpec) -> None:
    note = target_dir / "SOURCE.txt"
    text = (
        f"{spec.description}\n"
        f"Source: https://github.com/{UPSTREAM_REPO} (commit {UPSTREAM_COMMIT}), "
        f"stimuli/{spec.folder}\n"
        f"Licence: {spec.licence}. Geirhos et al., ImageNet-trained CNNs are biased towards "
        "texture; increasing shape bias improves accuracy and robustness, ICLR 2019.\n"
    )
    if not note.exists() or note.read_text(encoding="utf-8") != text:
        tmp = target_dir / f".SOURCE.txt.tmp-{secrets.token_hex(4)}"
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, note)
