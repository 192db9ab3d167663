"""Gram + per-layer statistics extraction throughput: texprobe's actor path against a naive loop (one
image and one layer per forward pass), side by side, alternating, in one run (this machine's speed drifts).

* Ours: exactly what ``pipelines.ops.grams.GramsOp`` computes per batch: one forward pass of the
  extractor trimmed after the deepest layer serves every layer (``model(x, layers)``), then per layer
  ``nstcore.stats.gram_matrix`` (one bmm over the batch), ``nstcore.layer_stats.summarize_layer(...,
  gram=G)`` (batched eigvalsh) and ``gram_upper_triangle`` - the GramsOp instance itself is used.
* Reference (:mod:`benchmarks.reference.naive_grams`): per image, per layer, the network prefix up to
  that layer, ``F @ F.T / (H*W)``, per-image statistics (eigvalsh etc.).
* Optional third column (``--ray``): the whole ``texprobe grams`` job (``run_operation('grams', ...)``: Ray actors, image
  decoding, Parquet writes, the discriminability table) into a temporary store.

Image decoding (Pillow, shorter side to ``size``) is done once, before timing, and EXCLUDED from both
compute columns; the Ray column includes it (and everything else the job does). Both compute columns are
first checked to give the same Grams (allclose) and statistics.

    python -m benchmarks.grams_throughput [--images DIR] [--n-images 16] [--repeats 3] [--ray]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import nstcore  # noqa: F401  (torchvision shim first)
import torch

from benchmarks._results import machine, write_results
from benchmarks.reference.naive_grams import STAT_KEYS, NaiveGramExtractor
from nstcore.backbones import create_backbone
from nstcore.images import load_image, pil_to_tensor, resize_shorter
from nstcore.layer_stats import summarize_layer
from nstcore.stats import gram_matrix, gram_upper_triangle

REPO = Path(__file__).resolve().parents[1]

#: (backbone, weights, layers, default size): real ImageNet weights for EfficientNet-Lite0 (all stage
#: outputs); random weights for VGG-19 (same FLOPs as ImageNet weights; none are bundled).
BACKBONES: dict[str, tuple[str, list[str]]] = {
    "efficientnet_lite0": ("imagenet", [f"stage{i}" for i in range(1, 8)]),
    "vgg19": ("random", ["conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1"]),
}


class BenchmarkCheckError(RuntimeError):
    """Ours and the reference disagree: the timing would compare different computations."""


def pick_images(image_dir: Path, n: int) -> list[Path]:
    """``n`` images spread evenly over the sorted list (so every category is represented)."""
    paths = sorted(image_dir.rglob("*.png"))
    if len(paths) < n:
        raise SystemExit(f"grams_throughput: need {n} PNG images under {image_dir}, found {len(paths)}.")
    step = len(paths) / n
    return [paths[int(i * step)] for i in range(n)]


def decode(paths: list[Path], size: int) -> torch.Tensor:
    """Decode as GramsOp.load does (shorter side to ``size``); the cue-conflict images are square."""
    return torch.stack([pil_to_tensor(resize_shorter(load_image(p), size)) for p in paths])


def make_worker(backbone: str, weights: str, layers: list[str], *, size: int, batch_size: int, store_root: str):
    """The grams operation as its actor holds it (model loaded by ``setup``; ``store_root`` is unused)."""
    from pipelines.ops.grams import GramsOp, grams_config

    op = GramsOp()
    op.setup(grams_config(backbone=backbone, layers=",".join(layers), size=size, inputs=(), weights=weights,
                          batch_size=batch_size), "cpu")
    return op


def ours(worker, images: torch.Tensor) -> dict[str, dict[str, object]]:
    """The compute part of ``GramsOp.compute`` (everything but decoding and building/writing rows)."""
    cfg = worker.config
    out: dict[str, dict[str, list]] = {layer: {"gram": [], "triu": [], **{k: [] for k in STAT_KEYS}} for layer in cfg.layers}
    for start in range(0, len(images), cfg.batch_size):
        feats = worker._features(images[start : start + cfg.batch_size])
        for layer in cfg.layers:
            f = feats[layer]
            g = gram_matrix(f, normalization=cfg.normalization)
            summary = summarize_layer(f, normalization=cfg.normalization, gram=g)
            tri = gram_upper_triangle(g).cpu()
            out[layer]["gram"].append(g)
            out[layer]["triu"].append(tri)
            for k in STAT_KEYS:
                out[layer][k] += summary[k].tolist()
    return {layer: {"gram": torch.cat(c["gram"]), "triu": torch.cat(c["triu"]),
                    **{k: torch.tensor(c[k], dtype=torch.float64) for k in STAT_KEYS}} for layer, c in out.items()}


def check_same(a: dict, b: dict, *, where: str) -> dict[str, float]:
    """Grams allclose (relative to each layer's largest entry) and statistics close; returns max errors."""
    worst: dict[str, float] = {}
    for layer in a:
        ga, gb = a[layer]["gram"].double(), b[layer]["gram"].double()
        scale = float(gb.abs().max()) or 1.0
        err = float((ga - gb).abs().max()) / scale
        worst[layer] = err
        if not torch.allclose(ga, gb, rtol=1e-4, atol=1e-5 * scale):
            raise BenchmarkCheckError(f"{where}: Grams of layer {layer} differ (max error {err:.2e} of max |G|).")
        if not torch.allclose(a[layer]["triu"].double(), b[layer]["triu"].double(), rtol=1e-4, atol=1e-5 * scale):
            raise BenchmarkCheckError(f"{where}: Gram upper triangles of layer {layer} differ.")
        for k in STAT_KEYS:
            sa, sb = a[layer][k], b[layer][k]
            # effective rank is sensitive to tiny eigenvalues of a float32 Gram: looser tolerance
            rtol = 1e-2 if k in ("effective_rank", "top_eig_share") else 1e-3
            if not torch.allclose(sa, sb, rtol=rtol, atol=1e-6):
                raise BenchmarkCheckError(f"{where}: statistic {k} of layer {layer} differs: {sa[:4]} vs {sb[:4]}.")
    return worst


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def ray_job(paths: list[Path], backbone: str, weights: str, layers: list[str], *, size: int, batch_size: int) -> float:
    """Seconds of the whole ``run_operation("grams", ...)`` job (actor start, decoding, Parquet, discriminability)."""
    from pipelines.ops.grams import grams_config
    from pipelines.ray_runtime import Placement
    from pipelines.runner import run_operation
    from pipelines.store import Store

    config = grams_config(backbone=backbone, layers=",".join(layers), size=size, inputs=tuple(str(p) for p in paths),
                          weights=weights, batch_size=batch_size, unit_size=len(paths))
    with tempfile.TemporaryDirectory() as tmp:
        res = run_operation("grams", config, store=Store(tmp), placement=Placement(actors=1), show_progress=False)
    n_images = res.counts["layer_stats"] // len(layers)
    if n_images != len(paths) or res.counts["errors"]:
        raise BenchmarkCheckError(f"ray job: {n_images} images, {res.counts['errors']} errors (expected {len(paths)}, 0).")
    return res.seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=Path, default=REPO / "data" / "cue-conflict")
    ap.add_argument("--n-images", type=int, default=16, help="16 keeps the default run near 4 min on 2 shared cores")
    ap.add_argument("--backbones", default="efficientnet_lite0,vgg19")
    ap.add_argument("--size", type=int, default=224, help="shorter side for efficientnet_lite0")
    ap.add_argument("--vgg-size", type=int, default=128, help="shorter side for vgg19 (224 is ~3x slower)")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--ray", action="store_true", help="also time the whole Ray job (run_operation) as a third column")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "grams_throughput.json")
    args = ap.parse_args()

    paths = pick_images(args.images, args.n_images)
    n = len(paths)
    results = []
    ray_started = False
    try:
        for backbone in [b.strip() for b in args.backbones.split(",") if b.strip()]:
            weights, layers = BACKBONES[backbone]
            size = args.vgg_size if backbone.startswith("vgg") else args.size
            images = decode(paths, size)
            with tempfile.TemporaryDirectory() as tmp:
                worker = make_worker(backbone, weights, layers, size=size, batch_size=args.batch_size, store_root=tmp)
                full = create_backbone(backbone, weights=weights)
                naive = NaiveGramExtractor(list(full.body.items()), mean=full.preprocessing.mean, std=full.preprocessing.std)
                # correctness first (also the warm-up of both paths)
                few = images[:4]
                errors = check_same(ours(worker, few), naive(few, layers), where=backbone)
                print(f"{backbone} @ {size}px, {n} images, layers {layers}: Grams of 4 images agree "
                      f"(max rel. error {max(errors.values()):.1e})")
                if args.ray and not ray_started:
                    import ray

                    ray.init(include_dashboard=False, logging_level="ERROR", log_to_driver=False)
                    ray_started = True
                rows = []
                for r in range(args.repeats):
                    # alternate which side goes first, so a drift in machine speed hits both alike
                    order = ("ref", "ours") if r % 2 == 0 else ("ours", "ref")
                    secs = {}
                    for side in order:
                        secs[side] = timed(lambda: ours(worker, images)) if side == "ours" else timed(lambda: naive(images, layers))
                    row = {"repeat": r, "reference_img_s": n / secs["ref"], "ours_img_s": n / secs["ours"],
                           "ratio": secs["ref"] / secs["ours"]}
                    msg = (f"  repeat {r}: naive {row['reference_img_s']:.2f} img/s, ours {row['ours_img_s']:.2f} img/s, "
                           f"ratio {row['ratio']:.2f}")
                    if args.ray:
                        job_s = ray_job(paths, backbone, weights, layers, size=size, batch_size=args.batch_size)
                        row["ray_job_img_s"] = n / job_s
                        msg += f", ray job {row['ray_job_img_s']:.2f} img/s"
                    rows.append(row)
                    print(msg)
            entry = {
                "backbone": backbone, "weights": weights, "layers": layers, "size": size, "images": n,
                "batch_size": args.batch_size, "max_rel_gram_error": errors, "rows": rows,
                "median_reference_img_s": statistics.median(r["reference_img_s"] for r in rows),
                "median_ours_img_s": statistics.median(r["ours_img_s"] for r in rows),
                "median_ratio": statistics.median(r["ratio"] for r in rows),
            }
            if args.ray:
                entry["median_ray_job_img_s"] = statistics.median(r["ray_job_img_s"] for r in rows)
            results.append(entry)
            print(f"{backbone}: median ours/naive speed-up {entry['median_ratio']:.2f}x "
                  f"({entry['median_ours_img_s']:.2f} vs {entry['median_reference_img_s']:.2f} img/s)")
    finally:
        if ray_started:
            import ray

            ray.shutdown()
    result = {
        "benchmark": "grams_throughput",
        "decoding": "excluded from the ours/reference columns (decoded once before timing); included in ray_job",
        "torch_threads": torch.get_num_threads(),
        "machine": machine(processor=True),
        "results": results,
    }
    write_results(args.out, result)


if __name__ == "__main__":
    main()
