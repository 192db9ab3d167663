"""What a reduced Gram precision saves and what it costs (issue 19 part 4), in one run.

* **Bytes per image** on disk, per ``--gram-dtype``: the ``grams`` rows of ``--bytes-images`` bundled
  stimuli encoded by the store's own writer (zstd, byte-stream-split floats), for VGG-19 conv1_1…conv5_1
  (seeded random weights: no ImageNet VGG weights offline; same shapes and value ranges as trained ones
  up to scale) and EfficientNet-Lite0 (real weights) at every texture layer (stem…stage7);
* **max relative Gram error** of each dtype against the float32 Grams (entries above 1e-4 of the
  layer's largest, where float16's subnormals do not dominate);
* **grouped texture discriminability** per layer and dtype (leave-one-texture-source-out nearest
  centroid, the `texture_discriminability` machinery) on the cue-conflict stimuli (``--images``, default
  all 1,280 from the shared data) with Lite0's real weights, and its largest change against float32.
  The rounding is applied to the float32 Grams exactly as ``grams --gram-dtype`` applies it
  (:func:`pipelines.ops.grams.round_to_dtype`), so one forward pass serves the three dtypes.

    python -m benchmarks.gram_dtype [--images DIR] [--max-images 1280] [--vgg] [--out results.json]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import nstcore  # noqa: F401  (torchvision shim first)
import numpy as np
import torch

from analysis import TABLES
from benchmarks._results import write_results
from analysis.discriminability import discriminability_rows, texture_source_from_name
from analysis.storage import encode_part
from analysis.storage.validate import conform_table
from nstcore.backbones import create_backbone
from nstcore.images import load_image, pil_to_tensor, resize_shorter
from nstcore.stats import gram_matrix, gram_upper_triangle
from pipelines.ops.grams import _grams_table, round_to_dtype

REPO = Path(__file__).resolve().parents[1]
DTYPES = ("float32", "float16", "bfloat16")
VGG_LAYERS = ("conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1")
LITE_LAYERS = ("stem", "stage1", "stage2", "stage3", "stage4", "stage5", "stage6", "stage7")

__all__ = ["main"]


def _grams(model, paths: list[Path], layers: tuple[str, ...], *, batch: int = 16) -> dict[str, torch.Tensor]:
    """float32 upper-triangle Grams ('hw') per layer, ``[n, C(C+1)/2]``, as the grams operation makes them."""
    out: dict[str, list[torch.Tensor]] = {layer: [] for layer in layers}
    for i in range(0, len(paths), batch):
        x = torch.stack([pil_to_tensor(resize_shorter(load_image(p), 224)) for p in paths[i:i + batch]])
        with torch.no_grad():
            feats = model(x, list(layers))
        for layer in layers:
            out[layer].append(gram_upper_triangle(gram_matrix(feats[layer], normalization="hw")).float())
    return {layer: torch.cat(v) for layer, v in out.items()}


def _rounded(tri: torch.Tensor, dtype: str) -> torch.Tensor:
    return tri if dtype == "float32" else round_to_dtype(tri, dtype)[0]


def bytes_per_image(grams: dict[str, torch.Tensor], dtype: str) -> float:
    """The store's encoding of these Grams at ``dtype``, in bytes per image (all layers)."""
    total, n = 0, 0
    for layer, tri in grams.items():
        vecs = _rounded(tri, dtype)
        n = vecs.shape[0]
        rows = [{"image_id": f"{i:064x}", "backbone": "b", "layer": layer, "channels": 1, "gram": vecs[i].numpy(),
                 "dtype": dtype} for i in range(n)]
        table = conform_table("grams", _grams_table(rows), TABLES["grams"], run_id="20260101T000000Z-gramdt")
        total += len(encode_part("grams", table))
    return total / n


def max_relative_error(grams: dict[str, torch.Tensor], dtype: str) -> float:
    worst = 0.0
    for tri in grams.values():
        ref = tri.double()
        big = ref.abs() > 1e-4 * ref.abs().max()
        rel = ((_rounded(tri, dtype).double() - ref).abs() / ref.abs().clamp_min(1e-30))[big]
        worst = max(worst, float(rel.max()))
    return worst


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=Path, default=None, help="cue-conflict stimuli (default: the shared 1,280)")
    ap.add_argument("--max-images", type=int, default=1280)
    ap.add_argument("--bytes-images", type=int, default=16)
    ap.add_argument("--permutations", type=int, default=20)
    ap.add_argument("--vgg", action="store_true",
                    help="also VGG-19's grouped discriminability (seeded random weights: random networks are "
                         "texture models too, Ustyuzhaninov et al. 2017)")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    bundled = sorted((REPO / "data" / "cue-conflict").rglob("*.png"))[: args.bytes_images]
    vgg = create_backbone("vgg19", weights="random", seed=0)
    lite = create_backbone("efficientnet_lite0", weights="imagenet")
    sets = {"vgg19 conv1_1..conv5_1 (random weights)": _grams(vgg, bundled, VGG_LAYERS),
            "efficientnet_lite0 stem..stage7": _grams(lite, bundled, LITE_LAYERS)}
    result: dict = {"bytes_per_image": {}, "max_relative_error": {}}
    for name, grams in sets.items():
        result["bytes_per_image"][name] = {d: bytes_per_image(grams, d) for d in DTYPES}
        result["max_relative_error"][name] = {d: max_relative_error(grams, d) for d in DTYPES}
        print(name + ": " + ", ".join(f"{d} {result['bytes_per_image'][name][d] / 1e6:.3f} MB/image "
                                      f"(max rel. error {result['max_relative_error'][name][d]:.1e})" for d in DTYPES))
    shared = Path(os.environ.get("TEXPROBE_SHARED_DATA") or REPO.parent / "shared" / "data")
    images = args.images or shared / "texture-vs-shape" / "stimuli" / "style-transfer-preprocessed-512"
    paths = sorted(images.rglob("*.png"))[: args.max_images]
    labels = [texture_source_from_name(p.name).rstrip("0123456789") for p in paths]
    sources = [texture_source_from_name(p.name) for p in paths]
    nets = [("efficientnet_lite0", lite, LITE_LAYERS, "grouped_discriminability")]
    if args.vgg:
        nets.append(("vgg19 (random weights, seed 0)", vgg, VGG_LAYERS, "grouped_discriminability_vgg19"))
    for backbone, model, layers, key in nets:
        grams = _grams(model, paths, layers)
        disc: dict[str, dict[str, float]] = {}
        for layer in layers:
            disc[layer] = {}
            for dtype in DTYPES:
                (row,) = [r for r in discriminability_rows(_rounded(grams[layer], dtype).numpy(), labels=labels,
                                                           sources=sources, n_permutations=args.permutations)
                          if r["grouping"] == "texture_source"]
                disc[layer][dtype] = row["accuracy"]
            print(f"{backbone} {layer}: grouped discriminability "
                  + ", ".join(f"{d} {disc[layer][d]:.4f}" for d in DTYPES), flush=True)
        del grams
        result[key] = {"images": len(paths), "backbone": backbone, "layers": disc,
                       "max_change": {d: max(abs(v[d] - v["float32"]) for v in disc.values()) for d in DTYPES}}
        print(f"{backbone}: largest change vs float32: " + ", ".join(
            f"{d} {v:.4f}" for d, v in result[key]["max_change"].items()))
    if args.out:
        write_results(args.out, result)
    return result


if __name__ == "__main__":
    main()
