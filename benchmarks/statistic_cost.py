"""Cost of one L-BFGS evaluation per style statistic (issue 21, Performance), relative to the Gram matrix,
side by side in one run: VGG-19 (random weights, seed 0; the same FLOPs as ImageNet weights), Gatys layers
(content conv4_2, style conv1_1..conv5_1), one content/style pair of the bundled stimuli at ``--size`` px.
One evaluation = the loss's forward pass and the input-gradient backward pass (what L-BFGS runs per
iteration, plus a few vector operations that do not depend on the statistic). The statistics run in an
order that alternates between repeats, so a drift of the machine's speed hits them alike; medians.

    python -m benchmarks.statistic_cost [--size 256] [--repeats 5] [--device cpu|cuda] [--out FILE]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import nstcore  # noqa: F401  (torchvision shim first)
import torch

from benchmarks._results import machine, write_results
from benchmarks.transfer_speed import load_pairs
from nstcore.backbones import create_backbone
from nstcore.losses import ContentLoss, PerceptualLoss, StyleLoss
from nstcore.stats import get_statistic, parse_statistic

REPO = Path(__file__).resolve().parents[1]
STYLE_LAYERS = ("conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1")
SPECS = ("gram", "cov", "corr", "mean_std", "skewness", "kurtosis", "moments:4", "sliced_wasserstein",
         "sliced_wasserstein:seed", "mmd_gaussian")

__all__ = ["measure", "main"]


def _evaluation(model, spec: str, content: torch.Tensor, style: torch.Tensor):
    fixed = spec.endswith(":seed")  # fixed directions (seed 0): the target's sorted projections are reused
    name, options = parse_statistic(spec.removesuffix(":seed"))
    options.update({"seed": 0} if fixed else {})
    loss = PerceptualLoss(model, content=[ContentLoss("conv4_2")],
                          style=StyleLoss(dict.fromkeys(STYLE_LAYERS, 1.0), statistic=get_statistic(name, **options)),
                          content_weight=1.0, style_weight=1e3)
    loss.set_targets(content=content, style=style)

    def run() -> float:
        x = content.clone().requires_grad_(True)
        if x.is_cuda:
            torch.cuda.synchronize()
        start = time.perf_counter()
        loss(x).total.sum().backward()
        if x.is_cuda:
            torch.cuda.synchronize()
        return time.perf_counter() - start

    return run


def measure(*, size: int, repeats: int, device: str, specs: tuple[str, ...] = SPECS) -> dict:
    model = create_backbone("vgg19", weights="random", seed=0).to(device)
    content, style = (t.to(device) for t in load_pairs(REPO / "data" / "cue-conflict", size, n=1))
    runs = {spec: _evaluation(model, spec, content, style) for spec in specs}
    for run in runs.values():
        run()  # warm-up (allocator, oneDNN primitives), untimed
    times: dict[str, list[float]] = {spec: [] for spec in specs}
    for r in range(repeats):
        for spec in (specs if r % 2 == 0 else tuple(reversed(specs))):
            times[spec].append(runs[spec]())
    medians = {spec: statistics.median(t) for spec, t in times.items()}
    return {spec: {"seconds": times[spec], "median_s": medians[spec], "vs_gram": medians[spec] / medians["gram"]}
            for spec in specs}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    rows = measure(size=args.size, repeats=args.repeats, device=args.device)
    print(f"one L-BFGS evaluation, VGG-19 conv1_1..conv5_1 + conv4_2 at {args.size} px on {args.device}:")
    for spec, row in rows.items():
        print(f"  {spec:<20} {row['median_s']:.3f} s  ({row['vs_gram']:.2f}x Gram)")
    result = {"benchmark": "statistic_cost", "size": args.size, "device": args.device, "machine": machine(),
              "rows": rows}
    if args.out:
        write_results(args.out, result)
    return result


if __name__ == "__main__":
    main()
