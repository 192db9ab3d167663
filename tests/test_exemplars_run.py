"""``texprobe exemplars`` (issue 22 part 3): per channel, the images that activate it most, in one Ray pass
whose units keep only their own top images. Reference: a plain loop here (decode, resize, one forward per
image, the channel's maximum over positions, sorted) over the same images and real Lite0 weights."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from analysis.db import connect
from pipelines.ops.exemplars import exemplars_config
from pipelines.runner import run_operation
from pipelines.store import Store

CHANNELS = (0, 5, 39)


@pytest.mark.ray
def test_channel_exemplars_are_the_top_images_of_the_whole_set(ray_cluster, small_stimuli: Path, tmp_path: Path):
    from nstcore.backbones import create_backbone
    from nstcore.images import load_image, pil_to_tensor, resize_shorter
    from pipelines.imagesets import sha256_file

    config = exemplars_config(backbone="efficientnet_lite0", layers="stage3", channels="0,5,39",
                              inputs=(str(small_stimuli),), top=3, unit_size=3, batch_size=2)
    report = run_operation("exemplars", config, store=Store(tmp_path / "store"), show_progress=False)
    paths = sorted(small_stimuli.glob("*.png"))
    assert report.status == "finished" and report.n_units == 3  # 8 images in units of 3
    # per unit and channel the union of its top 3 by peak and by mean: 3..6 rows (the last unit holds 2 images)
    assert 8 * len(CHANNELS) >= report.counts["exemplars"] >= (3 + 3 + 2) * len(CHANNELS)
    model = create_backbone("efficientnet_lite0", weights="imagenet")
    reference: dict[int, list[tuple[float, str]]] = {c: [] for c in CHANNELS}
    with torch.inference_mode():
        for p in paths:
            x = pil_to_tensor(resize_shorter(load_image(p), 224))[None]
            f = model(model.normalize(x), ["stage3"])["stage3"][0]
            for c in CHANNELS:
                reference[c].append((float(f[c].max()), sha256_file(p), float(f[c].mean())))
    con = connect(tmp_path / "store")
    for c in CHANNELS:
        got = con.execute("SELECT image_id, value FROM channel_exemplars WHERE channel = ? AND rank <= 3 ORDER BY rank",
                          [c]).fetchall()
        want = sorted(reference[c], key=lambda v: (-v[0], v[1]))[:3]
        assert [g[0] for g in got] == [w[1] for w in want], c
        assert [g[1] for g in got] == pytest.approx([w[0] for w in want], rel=1e-4, abs=1e-5)
        by_mean = con.execute("SELECT image_id FROM channel_exemplars WHERE channel = ? AND rank_mean <= 3 "
                              "ORDER BY rank_mean", [c]).fetchall()
        assert [g[0] for g in by_mean] == [w[1] for w in sorted(reference[c], key=lambda v: (-v[2], v[1]))[:3]]
    y, x, stride, h, w = con.execute("SELECT y, x, stride, height, width FROM channel_exemplars LIMIT 1").fetchone()
    assert 0 <= y < h and 0 <= x < w and stride == 8  # stage3 of EfficientNet-Lite0: stride 8


@pytest.mark.ray
@pytest.mark.shared_data("texture-vs-shape/stimuli/style-transfer-preprocessed-512")
def test_a_stage5_visualisation_beats_the_channels_best_exemplar(ray_cluster, tmp_path: Path):
    """The anchors' sanity check (Olah et al. 2017): the image optimised for a stage5 channel of Lite0 (bundled
    weights) activates it more (mean activation, the objective) than its best exemplar among the 1,280
    cue-conflict stimuli of Geirhos et al. (2019)."""
    from pipelines.ops.visualize import visualize_config
    from shared_data import SHARED_DATA

    stimuli = SHARED_DATA / "texture-vs-shape" / "stimuli" / "style-transfer-preprocessed-512"
    store = Store(tmp_path / "store")
    config = exemplars_config(backbone="efficientnet_lite0", layers="stage5", channels="7", inputs=(str(stimuli),),
                              top=1, unit_size=160, batch_size=32)
    report = run_operation("exemplars", config, store=store, show_progress=False)
    assert report.status == "finished" and report.counts["inputs"] == 1280
    visual = visualize_config(backbone="efficientnet_lite0", objectives=["channel:stage5:7"], steps=64, size=224)
    assert run_operation("visualize", visual, store=store, show_progress=False).status == "finished"
    con = connect(tmp_path / "store")
    (best,) = con.execute("SELECT mean FROM channel_exemplars WHERE rank_mean = 1").fetchone()
    start, end = con.execute("SELECT value_start, value_end FROM visualizations").fetchone()
    assert end > best > start, (start, best, end)
