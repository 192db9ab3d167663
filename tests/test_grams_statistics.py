"""Issue 21 part 1: the new style statistics in the per-layer probe: `texprobe grams --statistic S` stores each
image x layer's summary under S (style_vectors) and texture discriminability per statistic; the vectors
equal scipy/numpy on the same features; statistics without a fixed-size summary are refused by name."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.stats
import torch
from typer.testing import CliRunner

from analysis.db import connect
from pipelines.actor import UnitActor
from pipelines.cli import app
from pipelines.imagesets import collect_images
from pipelines.ops.base import image_item_dicts, make_units
from pipelines.ops.grams import grams_config
from pipelines.ops.imaging import load_shorter_side
from pipelines.store import Store

LAYERS = ["conv1_1", "conv2_1"]


def test_style_vectors_equal_numpy_on_the_same_features(tmp_path: Path, small_stimuli: Path):
    store = Store(tmp_path / "store")
    items = collect_images([small_stimuli])[:3]
    (unit,) = make_units(image_item_dicts(items), unit_size=3, key=lambda it: it["path"], salt="t")
    config = grams_config(backbone="vgg19", layers=",".join(LAYERS), size=40, inputs=(str(small_stimuli),),
                          weights="random", batch_size=3, statistics=("mean_std", "skewness", "moments:4"))
    actor = UnitActor(op_name="grams", config=config, store_root=store.root, run_id="20260101T000000Z-000002")
    done = actor.process(unit)
    assert done["n_errors"] == 0 and done["rows"]["style_vectors"] == 3 * 2 * 3
    rows = {(r["image_id"], r["layer"], r["statistic"]): np.asarray(r["vector"])
            for r in store.read_table("style_vectors").to_pylist()}
    model = actor.op.model
    for item in image_item_dicts(items):
        _, image_id, x = load_shorter_side(item, 40)
        with torch.no_grad():
            feats = model(model.normalize(x[None]), LAYERS)
        for layer in LAYERS:
            f = feats[layer][0].double().reshape(feats[layer].shape[1], -1).numpy()
            mean, std = f.mean(1), np.sqrt(f.var(1) + 1e-5)  # MeanStd: population std with AdaIN's eps 1e-5
            np.testing.assert_allclose(rows[(image_id, layer, "mean_std")], np.concatenate([mean, std]),
                                       rtol=1e-4, atol=1e-6)
            # skewness: scipy's (biased) definition with the statistic's eps 1e-5 added to the variance, which
            # keeps dead channels finite; where the variance dwarfs eps it is scipy.stats.skew itself
            centred = f - mean[:, None]
            skew = (centred ** 3).mean(1) / (f.var(1) + 1e-5) ** 1.5
            np.testing.assert_allclose(rows[(image_id, layer, "skewness")], skew, rtol=1e-4, atol=1e-5)
            big = f.var(1) > 0.015  # eps shifts these by < 1.5e-5 / 0.015 = 1e-3 relative
            assert big.sum() >= 2
            np.testing.assert_allclose(skew[big], scipy.stats.skew(f, axis=1)[big], rtol=2e-3, atol=1e-6)
            assert rows[(image_id, layer, "moments:4")].size == 4 * f.shape[0]


@pytest.mark.ray
def test_grams_statistic_discriminability_per_statistic(ray_cluster, tmp_path: Path, small_stimuli: Path):
    store = tmp_path / "store"
    res = CliRunner().invoke(app, ["grams", str(small_stimuli), "--backbone", "vgg19", "--weights", "random",
                                   "--layers", ",".join(LAYERS), "--size", "40", "--statistic", "mean_std",
                                   "--statistic", "kurtosis", "--store", str(store)])
    assert res.exit_code == 0, res.output
    con = connect(store)
    stats = {r[0] for r in con.execute("SELECT DISTINCT statistic FROM texture_discriminability").fetchall()}
    assert stats == {"gram", "mean_std", "kurtosis"}
    n = con.execute("SELECT count(*) FROM style_vectors").fetchone()[0]
    images = con.execute("SELECT count(DISTINCT image_id) FROM layer_stats").fetchone()[0]
    assert n == images * len(LAYERS) * 2


@pytest.mark.parametrize("spec", ["sliced_wasserstein", "mmd_gaussian"])
def test_statistics_without_a_fixed_size_summary_are_refused(tmp_path: Path, small_stimuli: Path, spec: str):
    res = CliRunner().invoke(app, ["grams", str(small_stimuli), "--backbone", "vgg19", "--weights", "random",
                                   "--statistic", spec, "--store", str(tmp_path / "s")])
    assert res.exit_code == 2 and f"--statistic {spec}: it keeps the feature vectors" in " ".join(res.output.split())
    assert "Traceback" not in res.output and not (tmp_path / "s").exists()
