"""A store on a real S3 endpoint (moto's server mode on localhost): writes, views, store check.

moto runs as a separate process (``moto_server``: ``$TEXPROBE_MOTO_SERVER``, ``.venv-moto/bin/``, PATH,
or ``python -m moto.server`` when this interpreter has it; moto cannot live in the project venv, whose
python-dateutil pin conflicts with botocore) on a free port and is stopped by its pid.
The views must answer without DuckDB's httpfs extension (analysis.storage hands DuckDB pyarrow
datasets), so this works on an offline machine.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import warnings
from pathlib import Path

import pyarrow.fs as pafs
import pytest

from analysis.db import connect
from analysis.storage import UnreadablePartWarning
from pipelines.commands_store import store_check
from pipelines.manifests import finish_run, start_run
from pipelines.store import Store

BUCKET = "texprobe-test"


def _moto_command() -> list[str] | None:
    explicit = os.environ.get("TEXPROBE_MOTO_SERVER")
    if explicit:
        return explicit.split()
    local = Path(__file__).resolve().parents[1] / ".venv-moto" / "bin" / "moto_server"
    found = str(local) if local.exists() else shutil.which("moto_server")
    if found:
        return [found]
    if importlib.util.find_spec("moto") is not None:
        return [sys.executable, "-m", "moto.server"]
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def s3_endpoint():
    cmd = _moto_command()
    if cmd is None:
        pytest.skip("S3 TEST SKIPPED: moto_server not found (python3 -m venv .venv-moto && "
                    ".venv-moto/bin/pip install 'moto[server]==5.2.1', or set TEXPROBE_MOTO_SERVER)")
    port = _free_port()
    proc = subprocess.Popen([*cmd, "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1).read()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    pytest.fail(f"moto server did not start: {cmd}")
                time.sleep(0.2)
        req = urllib.request.Request(f"http://127.0.0.1:{port}/{BUCKET}", method="PUT")
        urllib.request.urlopen(req, timeout=5).read()
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture
def s3_env(monkeypatch):
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true"}.items():
        monkeypatch.setenv(key, value)


def _trial(i: int, decision: str) -> dict:
    return {"source": "texprobe", "observer": "m", "observer_kind": "model", "image": f"cat{i}-dog1.png",
            "image_id": f"{i:064x}", "dataset": "d", "shape_category": "cat", "texture_category": "dog",
            "conflict": True, "decision": decision, "weights_tag": "w", "weights_sha256": "b" * 64}


def _keys(store: Store) -> list[str]:
    infos = store.fs.get_file_info(pafs.FileSelector(store.location.base, recursive=True))
    return sorted(store.location.relative(i.path) for i in infos if i.type == pafs.FileType.File)


def test_s3_store_writes_views_and_check(s3_endpoint, s3_env, request):
    uri = f"s3://{BUCKET}/{request.node.name}?endpoint_override={s3_endpoint}&scheme=http&region=us-east-1"
    store = Store(uri)
    assert not store.location.local
    rid = start_run(store, command="classify", argv=[], config={}, planned_units=["u0", "u1"])["run_id"]
    # 3 shape hits, 1 texture hit, 1 other decision: shape bias 3 / (3 + 1) = 0.75 by hand
    store.write_table("trials", rid, [_trial(0, "cat"), _trial(1, "cat"), _trial(2, "dog")], part="u0")
    store.write_table("trials", rid, [_trial(3, "cat"), _trial(4, "car")], part="u1")
    store.write_table("grams", rid, [{"image_id": "c" * 64, "backbone": "vgg19", "layer": "relu1_1",
                                      "channels": 2, "normalization": "hw", "gram": [1.0, 0.5, 2.0]}],
                      part="u0")
    rel = store.write_image(b"\x89PNG\r\n\x1a\n" + b"\x00" * 16)
    finish_run(store, rid, status="finished")
    assert store.image_path(rel).startswith(f"s3://{BUCKET}/") and store.image_path(rel).endswith(
        f"{rel}?endpoint_override={s3_endpoint}&scheme=http&region=us-east-1")
    keys = _keys(store)
    assert f"tables/trials/run_id={rid}/u0.parquet" in keys and f"runs/{rid}.json" in keys
    assert not [k for k in keys if "/." in k or k.startswith(".")]  # one PUT per file: no temp keys
    assert store.read_manifest(rid)["counts"]["rows"] == {"trials": 5, "grams": 1}

    con = connect(uri)
    assert con.execute("SELECT count(*) FROM trials").fetchone()[0] == 5
    assert con.execute("SELECT count(*) FROM runs WHERE status = 'finished'").fetchone()[0] == 1
    sb = con.execute("SELECT shape_bias FROM shape_bias").fetchall()
    assert len(sb) == 1 and sb[0][0] == pytest.approx(0.75)
    grams = store.dataset("grams", run_id=rid).to_table()
    assert grams["gram"].to_pylist() == [[1.0, 0.5, 2.0]]
    loaded = con.execute("SELECT count(*) FROM duckdb_extensions() WHERE extension_name = 'httpfs' "
                         "AND loaded").fetchone()[0]
    assert loaded == 0  # answered without DuckDB's httpfs extension

    # a zero-byte part on S3: the views skip it with a warning naming it; check quarantines it
    bad = store.location.part_path("trials", rid, "zero")
    with store.fs.open_output_stream(bad):
        pass
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert connect(uri).execute("SELECT count(*) FROM trials").fetchone()[0] == 5
    assert any("zero.parquet" in str(w.message) for w in caught if w.category is UnreadablePartWarning)
    lines: list[str] = []
    assert store_check(store=uri, quarantine=True, echo=lines.append) == 0
    assert f"quarantine/tables/trials/run_id={rid}/zero.parquet" in _keys(store)
    assert f"tables/trials/run_id={rid}/zero.parquet" not in _keys(store)


def test_sweep_reads_its_stimuli_from_an_s3_store(s3_endpoint, s3_env, request, tmp_path):
    """A `[sweep]`'s classify step reads the generated stimuli through the store: on S3 they are fetched into
    a scratch folder, byte-identical, named after the stimulus, with their categories in the manifest."""
    import csv
    import hashlib
    from contextlib import ExitStack

    from pipelines.studies.plan import TaskPlan
    from pipelines.studies.sweep import stimuli_manifest

    uri = f"s3://{BUCKET}/{request.node.name}?endpoint_override={s3_endpoint}&scheme=http&region=us-east-1"
    store = Store(uri)
    data = (Path(__file__).resolve().parents[1] / "data" / "cue-conflict" / "cat" / "cat1-airplane1.png").read_bytes()
    rel = store.write_image(data)
    sid = hashlib.sha256(data).hexdigest()
    plan = TaskPlan(task=None, key="k", table="trials", n_images=1, done=0, failed=[],
                    missing=[{"stimulus_id": sid, "path": rel, "image": "cat1-knife2.png", "shape_category": "cat",
                              "texture_category": "knife"}])
    with ExitStack() as scratch:
        manifest = stimuli_manifest(store, plan, scratch, "sweep:s3")
        (row,) = list(csv.DictReader(open(manifest, encoding="utf-8")))
        assert Path(row["path"]).name == "cat1-knife2.png" and Path(row["path"]).read_bytes() == data
        assert (row["shape_category"], row["texture_category"], row["dataset"]) == ("cat", "knife", "sweep:s3")
    assert not Path(manifest).exists()  # the scratch folder goes with the run


def test_images_listed_by_uri_are_read_from_object_storage(s3_endpoint, s3_env, request, tmp_path):
    """Issue 20 part 1: a Parquet manifest of s3:// URIs (a dataset that lives in object storage). The
    classify op loads each object where it runs (here the generic actor in-process, credentials from the
    environment): its trials equal those of the same images from local files, image_id is the sha256 of the
    bytes, and a missing object is one errors row naming its URI."""
    import hashlib

    import pyarrow as pa
    import pyarrow.parquet as pq

    from pipelines.actor import UnitActor
    from pipelines.imagesets import collect_images
    from pipelines.ops.base import image_item_dicts, make_units
    from pipelines.ops.classify import ClassifyConfig

    local = sorted((Path(__file__).resolve().parents[1] / "data" / "cue-conflict" / "cat").glob("*.png"))[:3]
    bucket = Store(f"s3://{BUCKET}/{request.node.name}?endpoint_override={s3_endpoint}&scheme=http&region=us-east-1")
    uris = [bucket.image_path(bucket.write_image(p.read_bytes())) for p in local]  # images/<sha256>.png objects
    missing = uris[0].replace("/images/", "/nowhere/")
    manifest = tmp_path / "listing.parquet"
    pq.write_table(pa.table({"path": [*uris, missing], "shape_category": ["cat"] * 4}), manifest)

    items = collect_images([manifest])
    sha = {hashlib.sha256(p.read_bytes()).hexdigest(): p for p in local}
    assert [i.path for i in items] == [*uris, missing] and {i.image for i in items[:3]} == {f"{h}.png" for h in sha}

    def classify(entries, name):
        (unit,) = make_units(image_item_dicts(entries), unit_size=8, key=lambda it: it["path"], salt=name)
        store = Store(tmp_path / name)
        actor = UnitActor(op_name="classify", config=ClassifyConfig(inputs=(str(manifest),)), store_root=store.root,
                          run_id="20260101T000000Z-000003")
        actor.process(unit)
        return store.read_table("trials").to_pylist(), store.read_table("errors").to_pylist()

    remote, errors = classify(items, "remote")
    ours, _ = classify(collect_images(local), "local")
    by_id = {r["image_id"]: r for r in ours}
    assert len(remote) == 3 and len(errors) == 1 and errors[0]["input"] == missing
    assert "no such object" in errors[0]["message"]
    for r in remote:
        assert r["image"] == f"{r['image_id']}.png" and r["image_id"] in sha  # the bytes' sha256
        assert (r["decision"], r["probs16"]) == (by_id[r["image_id"]]["decision"], by_id[r["image_id"]]["probs16"])
