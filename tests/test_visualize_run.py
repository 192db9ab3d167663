"""``texprobe visualize`` (issue 22 part 1): objectives optimised B at a time on Ray actors with the real
EfficientNet-Lite0 weights, one ``visualizations`` row and one stored PNG per objective; the same objective
and seed give the same image in a batch of 2 and alone; bad objectives are one-line errors before anything
is written."""

from __future__ import annotations

import hashlib
import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from analysis.db import connect
from pipelines.ops.visualize import expand_objectives, visualize_config
from pipelines.runner import run_operation
from pipelines.store import Store

REPO = Path(__file__).resolve().parents[1]
OBJECTIVES = ["channel:stage3:5", "neuron:stage4:7", "layer:stage2"]


def test_all_channels_expands_from_the_backbone_feature_info():
    """Lite0's stem has 32 channels (Tan & Le 2019, not rescaled in the Lite variants)."""
    assert expand_objectives("efficientnet_lite0", ["all-channels:stem"]) == tuple(f"channel:stem:{c}" for c in range(32))


@pytest.mark.ray
def test_visualize_run_lands_rows_and_images(ray_cluster, tmp_path):
    from PIL import Image

    from nstcore.backbones import create_backbone
    from nstcore.visualize import parse_objective, render
    from pipelines.ops.imaging import png_bytes

    store_dir = tmp_path / "store"
    config = visualize_config(backbone="efficientnet_lite0", objectives=OBJECTIVES, steps=12, size=64, batch_size=2,
                              seed=3)
    report = run_operation("visualize", config, store=Store(store_dir), show_progress=False)
    assert report.status == "finished" and report.counts["visualizations"] == 3 and report.n_units == 2
    rows = connect(store_dir).execute(
        "SELECT objective, kind, layer, channels, seed, value_start, value_end, image_id, path "
        "FROM visualizations ORDER BY seed").fetchall()
    assert [r[0] for r in rows] == OBJECTIVES and [r[4] for r in rows] == [3, 4, 5]
    assert [(r[1], r[2], list(r[3])) for r in rows] == [("channel", "stage3", [5]), ("neuron", "stage4", [7]),
                                                        ("layer", "stage2", [])]
    for objective, *_, start, end, image_id, path in rows:
        assert end > start, objective  # the optimisation raised every objective
        data = (store_dir / path).read_bytes()
        assert hashlib.sha256(data).hexdigest() == image_id
        assert Image.open(io.BytesIO(data)).size == (64, 64)
    # the third objective ran in a batch of one (unit 2); the first in a batch of two: alone, with its seed,
    # the core renders the same image
    model = create_backbone("efficientnet_lite0", weights="imagenet")
    alone = render(lambda x, layers: model(model.normalize(x), layers), [parse_objective(OBJECTIVES[0])], size=64,
                   steps=12, seeds=[3])
    stored = np.asarray(Image.open(store_dir / rows[0][8]), dtype=np.int16)
    again = np.asarray(Image.open(io.BytesIO(png_bytes(alone.images[0]))), dtype=np.int16)
    assert np.abs(stored - again).max() <= 1
    # --bf16 --channels-last: the network's precision is recorded per row and the objective still rises
    fast = visualize_config(backbone="efficientnet_lite0", objectives=OBJECTIVES[:1], steps=12, size=64, seed=3,
                            bf16=True, channels_last=True)
    assert run_operation("visualize", fast, store=Store(store_dir), show_progress=False).status == "finished"
    precision = connect(store_dir).execute(
        "SELECT precision, value_end > value_start FROM visualizations WHERE objective = ? ORDER BY precision",
        [OBJECTIVES[0]]).fetchall()
    assert precision == [("bfloat16", True), ("float32", True)]


def test_a_bad_objective_is_one_line_and_writes_nothing(tmp_path):
    store = tmp_path / "store"
    out = subprocess.run([sys.executable, "-m", "pipelines.cli", "visualize", "channel:stage3:9999", "--store",
                          str(store)], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "layer 'stage3' has 40 channels (0..39)" in out.stderr
    assert not store.exists()


def test_featuremaps_draws_the_strongest_channels_first(tmp_path):
    """`texprobe featuremaps`: the channels it shows are the top 6 by mean activation, computed here from
    Lite0's stage3 directly; the figure is written."""
    import re

    import torch

    from nstcore.backbones import create_backbone
    from nstcore.images import load_image, pil_to_tensor, resize_shorter

    image = sorted((REPO / "data" / "cue-conflict").rglob("*.png"))[3]
    out = subprocess.run([sys.executable, "-m", "pipelines.cli", "featuremaps", str(image), "--layer", "stage3",
                          "--channels", "6", "--out", str(tmp_path / "maps.png"), "--store", str(tmp_path / "store")],
                         capture_output=True, text=True, cwd=REPO, timeout=300)
    assert out.returncode == 0, out.stderr
    shown = [int(c) for c in re.findall(r"(\d+) \(", out.stdout.split("strongest first)")[1].split("\n")[0])]
    model = create_backbone("efficientnet_lite0", weights="imagenet")
    with torch.inference_mode():
        f = model(model.normalize(pil_to_tensor(resize_shorter(load_image(image), 224))[None]), ["stage3"])["stage3"]
    top = torch.argsort(f[0].flatten(1).mean(1), descending=True)[:6].tolist()
    assert shown == top
    assert (tmp_path / "maps.png").stat().st_size > 10_000
    # --store: the same maps as a run of feature_maps, which the report's section draws
    from analysis.db import connect
    from analysis.plots import PlotContext, get_plot

    con = connect(tmp_path / "store")
    stored = con.execute("SELECT rank, channel, height, width, map, layer FROM feature_maps ORDER BY rank").fetchall()
    assert [r[1] for r in stored] == top and [r[0] for r in stored] == list(range(1, 7))
    for _, channel, h, w, values, layer in stored:
        assert layer == "stage3" and (h, w) == tuple(f.shape[2:])
        np.testing.assert_allclose(np.asarray(values).reshape(h, w), f[0, channel].numpy(), rtol=1e-5, atol=1e-5)
    fig = get_plot("feature-maps").render(PlotContext(con=con, store=str(tmp_path / "store")))
    assert len(fig.axes) == 1 + 6
