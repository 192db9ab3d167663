"""`grams --gram-dtype float32|float16|bfloat16` (issue 19 part 4): the Grams the grams operation computes,
rounded to the chosen precision, against a float64 Gram computed here with numpy from the same features;
the dtype recorded per row; a store mixing the three read by the views and by the discriminability step;
and the bytes a reduced precision saves on disk (Parquet byte-stream-split + zstd)."""

from __future__ import annotations

import io

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from analysis import TABLES
from analysis.db import connect
from analysis.storage import encode_part
from analysis.storage.validate import conform_table
from pipelines.ops.grams import GramsOp, _grams_table, grams_config, round_to_dtype
from pipelines.store import Store
from tests.cli_helpers import DATA

RUN = "20260101T000000Z-gdtype"
#: float16 has an 11-bit significand, bfloat16 an 8-bit one: rounding error <= 2^-11 and 2^-8 of the value
EPS = {"float32": 2.0 ** -22, "float16": 2.0 ** -11, "bfloat16": 2.0 ** -8}


def _op_rows(dtype: str, n: int = 3) -> tuple[list[dict], dict[str, np.ndarray]]:
    """The grams operation's rows for ``n`` bundled stimuli (Lite0 real weights, stem + stage3), and the
    float64 upper-triangle Grams of the same features computed with numpy."""
    config = grams_config(backbone="efficientnet_lite0", layers="stem,stage3", size=96,
                          inputs=(str(DATA / "cue-conflict"),), gram_dtype=dtype)
    op = GramsOp()
    op.setup(config, "cpu")
    items = next(iter(op.plan(config))).items[:n]
    batch = [(item, op.load(item)) for item in items]
    rows = op.compute(batch)["grams"]
    x = torch.stack([t for _, (_, _, t) in batch])
    with torch.no_grad():
        feats = op._features(x)
    reference = {}
    for layer in ("stem", "stage3"):
        f = feats[layer].double().numpy()
        b, c, h, w = f.shape
        flat = f.reshape(b, c, h * w)
        g = flat @ flat.transpose(0, 2, 1) / (h * w)
        iu = np.triu_indices(c)
        reference[layer] = g[:, iu[0], iu[1]]
    return rows, reference


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
def test_stored_grams_are_within_the_precision_of_their_dtype(dtype):
    rows, reference = _op_rows(dtype)
    for layer in ("stem", "stage3"):
        got = np.stack([r["gram"] for r in rows if r["layer"] == layer]).astype(np.float64)
        want = reference[layer]
        rel = np.abs(got - want) / np.maximum(np.abs(want), 1e-30)
        big = np.abs(want) > 1e-4 * np.abs(want).max()  # (float16's subnormals lose relative precision)
        assert rel[big].max() <= EPS[dtype] + 1e-4, (layer, rel[big].max())  # + float32 summation error
        assert {r["dtype"] for r in rows} == {dtype}
        if dtype != "float32":  # really rounded: the values sit on the coarser grid
            low = torch.float16 if dtype == "float16" else torch.bfloat16
            assert np.array_equal(got, torch.from_numpy(got).to(low).double().numpy())


def test_a_row_outside_float16_range_keeps_float32_and_says_so():
    tri = torch.tensor([[1.0, 70000.0, 2.0], [1.0, 2.0, 3.0]])
    rounded, dtypes = round_to_dtype(tri, "float16")
    assert dtypes == ["float32", "float16"] and rounded[0, 1].item() == 70000.0


def test_mixed_dtypes_read_by_the_views_and_the_discriminability_step(tmp_path):
    from pipelines.ops.texture_layers import compute_discriminability

    store = Store(str(tmp_path / "st"))
    rng = np.random.default_rng(0)
    rows = []
    for i in range(24):
        texture = ("cat", "dog", "boat")[i % 3]
        vec = rng.normal(size=6).astype(np.float32) + (i % 3)
        dtype = ("float32", "float16", "bfloat16")[i % 3 if i < 12 else 0]
        if dtype != "float32":
            vec = round_to_dtype(torch.from_numpy(vec)[None], dtype)[0][0].numpy()
        rows.append({"image_id": f"{i:064x}", "image": f"bear{i}-{texture}{i % 4}.png", "texture_category": texture,
                     "shape_category": "bear", "backbone": "vgg19", "weights_tag": "random", "weights_sha256": "a" * 64,
                     "layer": "conv1_1", "channels": 3, "gram": vec, "dtype": dtype})
    store.write_table("grams", RUN, _grams_table(rows), part="unit-1")
    got = connect(store.root).execute("SELECT dtype, count(*), sum(len(gram)) FROM grams GROUP BY dtype ORDER BY 1"
                                      ).fetchall()
    assert got == [("bfloat16", 4, 24), ("float16", 4, 24), ("float32", 16, 96)]
    table = compute_discriminability(store, RUN, ["conv1_1"], n_permutations=20)
    assert table is not None and table.num_rows == 2  # texture_source and image groupings


def test_reduced_precision_halves_the_bytes_on_disk():
    """The part the store writes for the same Grams: bfloat16 <= 0.40x and float16 <= 0.50x the float32 bytes
    (VGG-scale Gram vectors of smooth, correlated values; measured on the files, with pyarrow)."""
    rng = np.random.default_rng(1)
    base = rng.gamma(2.0, 0.01, size=(8, 64, 4096)).astype(np.float32)
    tri = torch.from_numpy(np.einsum("bcm,bdm->bcd", base, base)[:, *np.triu_indices(64)] / 4096)
    sizes = {}
    for dtype in ("float32", "float16", "bfloat16"):
        vecs, dtypes = (tri, ["float32"] * 8) if dtype == "float32" else round_to_dtype(tri, dtype)
        rows = [{"image_id": f"{i:064x}", "backbone": "vgg19", "layer": "conv1_1", "channels": 64,
                 "gram": vecs[i].numpy(), "dtype": dtypes[i]} for i in range(8)]
        table = conform_table("grams", _grams_table(rows), TABLES["grams"], run_id=RUN)
        payload = encode_part("grams", table)
        assert pq.read_table(io.BytesIO(payload)).column("dtype").to_pylist() == dtypes
        sizes[dtype] = len(payload)
    assert sizes["float16"] <= 0.5 * sizes["float32"] and sizes["bfloat16"] <= 0.4 * sizes["float32"], sizes
