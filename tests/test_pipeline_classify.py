"""A classify run through real Ray into a real Parquet store, read back by DuckDB; corrupt images
become `errors` rows while the rest of the run lands; resume skips finished units."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from analysis.db import connect
from pipelines.ops.classify import ClassifyConfig
from pipelines.runner import run_operation
from pipelines.store import Store

pytestmark = pytest.mark.ray
CATEGORIES = Path(__file__).resolve().parents[1] / "nstcore/resources/imagenet16_category_to_indices.json"


def reference_decisions(paths: list[Path]) -> dict[str, str]:
    """Independent single-process loop: Pillow decode, model logits, softmax, mean rule in numpy
    from the shared category JSON (not nstcore.classify)."""
    from PIL import Image

    from nstcore.backbones import create_backbone

    mapping = json.loads(CATEGORIES.read_text())
    cats = sorted(mapping)
    model = create_backbone("efficientnet_lite0", weights="imagenet")
    out = {}
    for p in paths:
        arr = np.asarray(Image.open(p).convert("RGB"), dtype=np.float32) / 255.0
        x = torch.from_numpy(arr).permute(2, 0, 1)[None]
        x = (x - 0.5) / 0.5
        with torch.no_grad():
            prob = torch.softmax(model.logits(x), dim=1)[0].double().numpy()
        scores = [prob[mapping[c]].mean() for c in cats]
        out[p.name] = cats[int(np.argmax(scores))]
    return out


def test_classify_run_lands_in_store_and_duckdb(ray_cluster, small_stimuli: Path, tmp_path: Path):
    good = sorted(small_stimuli.glob("*.png"))
    (small_stimuli / "cat99-dog1.png").write_bytes(b"this is not a png")
    truncated = good[0].read_bytes()[:2000]
    (small_stimuli / "truck99-cat1.png").write_bytes(truncated)
    store_dir = tmp_path / "store"
    config = ClassifyConfig(inputs=(str(small_stimuli),), unit_size=3, batch_size=4)

    result = run_operation("classify", config, store=Store(store_dir), show_progress=False)
    assert result.status == "finished" and result.missing == []
    assert result.counts["trials"] == len(good)
    assert result.counts["errors"] == 2
    assert result.counts["inputs"] == len(good) + 2
    assert result.n_units == 4  # 10 images in units of 3

    con = connect(store_dir)
    trials = con.execute(
        "SELECT image, image_id, decision, shape_category, texture_category, conflict, observer, observer_kind, "
        "weights_sha256, len(top5), shape_rank FROM trials ORDER BY image"
    ).fetchall()
    assert [t[0] for t in trials] == sorted(p.name for p in good)
    for image, image_id, decision, shape, texture, conflict, observer, kind, sha, ntop, srank in trials:
        assert image_id == hashlib.sha256((small_stimuli / image).read_bytes()).hexdigest()
        assert observer == "efficientnet_lite0" and kind == "model"
        assert conflict == (shape != texture)
        assert ntop == 5 and 1 <= srank <= 1000
        assert len(sha) == 64
    assert {t[2] for t in trials} <= set(json.loads(CATEGORIES.read_text()))
    # decisions agree with an independent single-process loop
    ref = reference_decisions(good)
    assert {t[0]: t[2] for t in trials} == ref

    errors = con.execute("SELECT input, stage, error_type FROM errors ORDER BY input").fetchall()
    assert [Path(e[0]).name for e in errors] == ["cat99-dog1.png", "truck99-cat1.png"]
    assert all(e[1] == "load" for e in errors)

    sb = con.execute("SELECT n_conflict, shape_hits + texture_hits FROM shape_bias WHERE observer = 'efficientnet_lite0'").fetchone()
    assert sb[0] == sum(1 for t in trials if t[5])

    manifest = json.loads((store_dir / "runs" / f"{result.run_id}.json").read_text())
    assert manifest["status"] == "finished" and manifest["counts"]["trials"] == len(good)
    assert manifest["counts"]["errors"] == 2 and len(Store(store_dir).read_plan(result.run_id)) == 4
    trial_dir = store_dir / "tables" / "trials" / f"run_id={result.run_id}"
    files = sorted(p.name for p in trial_dir.iterdir())
    # the finished run was compacted: its 4 unit parts are one sorted file, the record names the 4 units
    record = json.loads((trial_dir / "_compaction.json").read_text())
    assert [f for f in files if f.endswith(".parquet")] == record["files"] and len(record["files"]) == 1
    assert sorted(record["units"]) == sorted(u["unit_id"] for u in Store(store_dir).read_plan(result.run_id))

    # resume: every unit is finished, nothing is recomputed, no file is added, counts cover the whole run
    again = run_operation("classify", config, store=Store(store_dir), resume=result.run_id, show_progress=False)
    assert again.run_id == result.run_id and again.n_resumed == 4 and again.status == "finished"
    assert again.counts["trials"] == len(good) and again.counts["errors"] == 2
    assert sorted(p.name for p in trial_dir.iterdir()) == files
    assert con.execute("SELECT count(*) FROM trials").fetchone()[0] == len(good)
    manifest = json.loads((store_dir / "runs" / f"{result.run_id}.json").read_text())
    assert manifest["counts"]["trials"] == len(good) and len(manifest["invocations"]) == 2
    assert manifest["invocations"][1]["units_run"] == 0


def test_a_copy_under_another_name_counts_once(ray_cluster, small_stimuli: Path, tmp_path: Path):
    """Issue 20 part 4, end to end: one stimulus copied into a sub-folder is classified under both names
    (two trials), recorded when the run settles (duplicate_images, both names), and counted once by
    shape_bias: n_conflict is the number of distinct images (8), not of files (9)."""
    images = sorted(small_stimuli.glob("*.png"))
    (small_stimuli / "copies").mkdir()
    (small_stimuli / "copies" / images[0].name).write_bytes(images[0].read_bytes())
    store_dir = tmp_path / "store"
    config = ClassifyConfig(inputs=(str(small_stimuli),), unit_size=4, batch_size=4)
    result = run_operation("classify", config, store=Store(store_dir), show_progress=False)
    assert result.status == "finished" and result.counts["trials"] == len(images) + 1
    con = connect(store_dir)
    (n_trials, names), = con.execute("SELECT n_trials, images FROM duplicate_images").fetchall()
    assert n_trials == 2 and sorted(n.rsplit("/", 1)[-1] for n in names) == [images[0].name] * 2
    assert con.execute("SELECT sum(n_conflict) FROM shape_bias").fetchone() == (len(images),)
