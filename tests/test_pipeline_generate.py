"""`stylize` and `reconstruct` through Ray into the store: named cue-conflict stimuli, stimuli/loss_curves/
reconstructions rows, content-addressed images, classification of the generated set, bad inputs."""

from __future__ import annotations

import hashlib
import math
import shutil
from pathlib import Path

import pytest
from PIL import Image

from analysis.db import connect
from pipelines.imagesets import ImageSetError
from pipelines.ops.classify import ClassifyConfig
from pipelines.ops.pairs import make_pairs
from pipelines.ops.reconstruct import layer_sets, reconstruct_config
from pipelines.ops.stylize import StylizeConfig
from pipelines.ops.transfer_options import build_transfer_config
from pipelines.runner import run_operation
from pipelines.store import Store

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def content_style(tmp_path: Path) -> tuple[Path, Path]:
    """Content: two silhouettes (bear, cat), one of them grey-scale 'L' converted; style: an RGBA and an
    RGB texture crop taken from cue-conflict stimuli, named after their texture category."""
    content = tmp_path / "content"
    style = tmp_path / "style"
    content.mkdir()
    style.mkdir()
    shutil.copyfile(REPO / "data/filled-silhouettes/bear/bear1.png", content / "bear1.png")
    Image.open(REPO / "data/edges/cat/cat2.png").convert("L").save(content / "cat2.png")
    src = sorted((REPO / "data/cue-conflict/clock").glob("*.png"))[0]
    Image.open(src).convert("RGBA").save(style / "clock1.png")
    Image.open(sorted((REPO / "data/cue-conflict/bear").glob("*.png"))[0]).save(style / "bear3.png")
    return content, style


def stylize_config(content: Path, style: Path, **transfer) -> StylizeConfig:
    config = build_transfer_config(backbone="vgg19", weights="random", preset_name=None, **transfer)
    return StylizeConfig(content=(str(content),), style=(str(style),), transfer=config.to_dict(),
                         config_hash=config.config_hash(), backbone="vgg19", weights="random", batch_size=2)


def test_pairs_conflict_all_and_csv(content_style, tmp_path):
    from pipelines.imagesets import collect_images

    content, style = content_style
    c, s = collect_images([content]), collect_images([style])
    conflict = make_pairs(c, s, "conflict")
    assert sorted(p["name"] for p in conflict) == ["bear1-clock1.png", "cat2-bear3.png", "cat2-clock1.png"]
    assert len(make_pairs(c, s, "all")) == 4
    csv = tmp_path / "pairs.csv"
    csv.write_text("content,style\nbear1.png,bear3.png\n")
    (only,) = make_pairs(c, s, str(csv))
    assert only["name"] == "bear1-bear3.png" and only["shape"] == only["texture"] == "bear"
    csv.write_text("content,style\nbear1.png,zebra9.png\n")
    with pytest.raises(ImageSetError, match="line 2"):
        make_pairs(c, s, str(csv))
    with pytest.raises(ImageSetError, match="no style images"):
        make_pairs(c, [], "conflict")


def test_cue_conflict_stimuli_as_contents_give_geirhos_names(tmp_path):
    """A stimulus '<shape><n>-<texture><m>.png' used as a content stands for its shape part, as one used as
    a style stands for its texture part: the output '<shape><n>-<texture><m>.png' is what the views parse
    (its texture source '<texture><m>'), not 'boat4-boat3-knife1.png'."""
    from pipelines.imagesets import collect_images

    for folder, names in (("content", ["boat4-boat3.png", "cat9-cat3.png"]), ("style", ["airplane4-knife1.png"])):
        (tmp_path / folder).mkdir()
        for name in names:
            shape = name.split("-")[0].rstrip("0123456789")
            shutil.copyfile(REPO / "data" / "cue-conflict" / shape / name, tmp_path / folder / name)
    pairs = make_pairs(collect_images([tmp_path / "content"]), collect_images([tmp_path / "style"]), "conflict")
    assert sorted(p["name"] for p in pairs) == ["boat4-knife1.png", "cat9-knife1.png"]
    assert {(p["shape"], p["texture"]) for p in pairs} == {("boat", "knife"), ("cat", "knife")}


@pytest.mark.ray
def test_stylize_writes_stimuli_and_classifies_them(ray_cluster, content_style, tmp_path):
    content, style = content_style
    Image.new("RGB", (8, 8), "red").save(style / "truck4.png")  # too small: an errors row, the rest lands
    store = Store(tmp_path / "store")
    config = stylize_config(content, style, size=32, steps=3, record_every=1, style_layers="conv1_1,conv2_1",
                            content_layer="conv2_1")
    res = run_operation("stylize", config, store=store, show_progress=False)
    assert res.counts["inputs"] == 5 and res.counts["stimuli"] == 3 and res.counts["errors"] == 2
    assert res.status == "finished"  # bad pairs cost a row each, not their unit
    con = connect(store.root)
    rows = con.execute("SELECT image, shape_category, texture_category, stimulus_id, path, steps, config_hash "
                       "FROM stimuli ORDER BY image").fetchall()
    assert [r[0] for r in rows] == ["bear1-clock1.png", "cat2-bear3.png", "cat2-clock1.png"]
    export_dir = Path(res.extra["export_dir"])
    for image, shape, texture, sid, path, steps, chash in rows:
        data = (store_path := Path(store.root) / path).read_bytes()
        assert hashlib.sha256(data).hexdigest() == sid and path == f"images/{sid}.png"
        assert Image.open(store_path).size == (32, 32)
        assert (export_dir / shape / image).read_bytes() == data
        assert steps == 3 and chash == config.config_hash
    # what generated each stimulus, and the shared yardstick (issue 21), on every output
    made = con.execute("SELECT statistic, style_layers, style_weight, ref_layers, ref_gram, ref_mean_std, "
                       "ref_sliced_wasserstein, content_error, content_ssim FROM stimuli").fetchall()
    for stat, layers, weight, ref_layers, *values, ssim_value in made:
        assert stat == "gram" and layers == ["conv1_1", "conv2_1"] and weight == 1.0
        assert ref_layers == ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"]
        assert all(math.isfinite(v) and v > 0 for v in values) and -1 < ssim_value < 1
    curves = con.execute("SELECT item_id, count(*), min(step) FROM loss_curves GROUP BY item_id").fetchall()
    assert len(curves) == 3 and all(n >= 2 for _, n, _ in curves)
    errors = con.execute("SELECT input, stage, message FROM errors").fetchall()
    assert len(errors) == 2 and all(e[0].endswith("truck4.png") and "px" in e[2] for e in errors)

    # the exported folder is a dataset `classify` reads (what `stylize --classify` runs next)
    dataset = f"stylized:{res.run_id}"
    follow = run_operation("classify", ClassifyConfig(inputs=(str(export_dir),), dataset=dataset), store=store,
                           show_progress=False)
    assert follow.status == "finished" and follow.counts["trials"] == 3 and follow.counts["errors"] == 0
    con = connect(store.root)  # views registered anew: the classify run's parts
    trials = con.execute("SELECT count(*) FROM trials WHERE dataset = ?", [dataset]).fetchone()[0]
    assert trials == 3
    assert con.execute("SELECT n_conflict FROM shape_bias_by_dataset WHERE dataset = ?", [dataset]).fetchone()[0] == 3


def test_missing_style_folder_is_a_clear_error(content_style, tmp_path):
    content, _ = content_style
    config = stylize_config(content, tmp_path / "nope", size=32, steps=1)
    with pytest.raises(ImageSetError, match="nope"):
        run_operation("stylize", config, store=Store(tmp_path / "s"), show_progress=False)
    assert not (tmp_path / "s" / "runs").exists() or not list((tmp_path / "s" / "runs").iterdir())  # no manifest


@pytest.mark.ray
def test_reconstruct_rows_images_and_metrics(ray_cluster, small_stimuli, tmp_path):
    for extra in sorted(small_stimuli.glob("*.png"))[2:6]:  # four images (two cats, two trucks) keep it quick
        extra.unlink()
    store = Store(tmp_path / "store")
    config = reconstruct_config(backbone="vgg19", kind="content", layers="conv1_1,conv3_1",
                                inputs=(str(small_stimuli),), weights="random", steps=4, size=32, record_every=2,
                                batch_size=4)
    res = run_operation("reconstruct", config, store=store, show_progress=False)
    assert res.status == "finished" and res.counts["reconstructions"] == 8 and res.counts["errors"] == 0
    con = connect(store.root)
    rows = con.execute("SELECT layer, layers, pixel_mse, psnr, ssim, feature_error, decision, path FROM reconstructions").fetchall()
    assert len(rows) == 8 and {r[0] for r in rows} == {"conv1_1", "conv3_1"}
    for layer, layers, mse, psnr, ssim, ferr, decision, path in rows:
        assert layers == [layer]
        assert psnr == pytest.approx(10 * math.log10(1.0 / mse), rel=1e-6)   # PSNR's definition, data range 1
        assert -1.0 <= ssim <= 1.0 and ferr >= 0.0
        assert decision is not None
        assert Image.open(Path(store.root) / path).size == (32, 32)
    q = con.execute("SELECT kind, layer, n FROM reconstruction_quality ORDER BY layer").fetchall()
    assert q == [("content", "conv1_1", 4), ("content", "conv3_1", 4)]
    assert layer_sets("vgg19", "texture", "conv1_1,conv2_1") == (("conv1_1",), ("conv1_1", "conv2_1"))
    assert layer_sets("vgg19", "content", "conv2_1,conv1_1") == (("conv1_1",), ("conv2_1",))


def test_no_conflicting_pair_is_a_clear_error(tmp_path):
    """Content and style of one category only: --pairs conflict has nothing to make -> one-line error,
    not a run that 'finishes' with 0 stimuli."""
    from pipelines.imagesets import ImageItem
    from pipelines.ops.pairs import make_pairs

    cat = ImageItem(path=str(tmp_path / "cat1.png"), image="cat1.png", shape_category="cat", texture_category=None,
                    dataset="d")
    style = ImageItem(path=str(tmp_path / "cat2.png"), image="cat2.png", shape_category="cat",
                      texture_category=None, dataset="d")
    with pytest.raises(ImageSetError, match="no \\(content, style\\) pair"):
        make_pairs([cat], [style], "conflict")
