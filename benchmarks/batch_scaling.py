"""Does batching pay on this CPU? ``stylize`` at B=4 against B=1, per image, side by side (issue 12,
"Done means": B=4 at 256 px no slower per image than B=1).

Both sides: the tutorial objective of :mod:`benchmarks.transfer_speed` (VGG-19 random weights seed 0,
Gatys layers, fp32, clamp every step), the same content/style pairs (B=1 runs the first pair, B=4 the
first four), the same number of L-BFGS iterations. The order alternates every repeat (this machine's
speed drifts); the figure is the median over repeats of the per-repeat ratio
``(B=1 seconds per image) / (B=4 seconds per image)`` (> 1: B=4 is faster per image).

Second part, the optimiser alone: :func:`nstcore.optimize.lbfgs_minimize` with ``bounds=(0, 1)`` on a
separable quadratic of the same dimension (3 x size x size values per image), whose closure costs a few
elementwise passes, so the time is the batched L-BFGS's own (history products, line-free fixed step,
box tests) per image at B=1 and B=4.

Both sides run with :mod:`nstcore.cpu_allocator`'s setting (large freed blocks kept, as ``stylize`` on
CPU does by default); ``TEXPROBE_KEEP_FREED_MEMORY=0`` runs them with glibc's default instead, which
page-faults every step's large activations again (the ``minor_page_faults`` of each call are recorded).

    python -m benchmarks.batch_scaling [--size 256] [--steps 10] [--repeats 3] [--threads N] [--out FILE]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import time
from pathlib import Path

import torch

from benchmarks._results import machine, write_results
from benchmarks.transfer_speed import load_pairs, objective_config
from nstcore.backbones import create_backbone
from nstcore.cpu_allocator import ENV_VAR
from nstcore.optimize import lbfgs_minimize
from nstcore.transfer import stylize

REPO = Path(__file__).resolve().parents[1]


def time_stylize(model, content, style, *, batch: int, steps: int) -> dict:
    """Seconds (and minor page faults, see :mod:`nstcore.cpu_allocator`) of one ``stylize`` call."""
    faults0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    t0 = time.perf_counter()
    result = stylize(model, content[:batch], style[:batch], config=objective_config(steps, "float32"))
    secs = time.perf_counter() - t0
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults0
    return {"batch": batch, "seconds": secs, "per_image_s": secs / batch, "n_iter": result.n_iter.tolist(),
            "minor_page_faults": faults}


def time_optimizer(*, batch: int, size: int, steps: int) -> dict:
    """Batched L-BFGS on ``sum_i a_i (x_i - c_i)^2`` (a in [0.5, 1.5), c in [0, 1)), bounds [0, 1]."""
    gen = torch.Generator().manual_seed(0)
    dim = 3 * size * size
    a = torch.rand(batch, dim, generator=gen) + 0.5
    c = torch.rand(batch, dim, generator=gen)
    evals = [0]

    def closure(x: torch.Tensor) -> torch.Tensor:
        evals[0] += 1
        z = x.reshape(batch, -1) - c
        return (a * z * z).sum(1)

    x0 = torch.zeros(batch, 3, size, size)
    t0 = time.perf_counter()
    result = lbfgs_minimize(closure, x0, max_iter=steps, history_size=100, bounds=(0.0, 1.0))
    secs = time.perf_counter() - t0
    return {"batch": batch, "seconds": secs, "per_image_s": secs / batch, "n_iter": result.n_iter.tolist(),
            "closure_calls": evals[0]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=Path, default=REPO / "data" / "cue-conflict")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "batch_scaling.json")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    model = create_backbone("vgg19", weights="random", seed=0)
    content, style = load_pairs(args.images, args.size)
    time_stylize(model, content, style, batch=4, steps=1)  # warm-up (oneDNN primitives), untimed
    time_stylize(model, content, style, batch=1, steps=1)
    rows = []
    for r in range(args.repeats):
        order = (1, 4) if r % 2 == 0 else (4, 1)
        row = {"repeat": r}
        for b in order:
            row[f"stylize_b{b}"] = time_stylize(model, content, style, batch=b, steps=args.steps)
        for b in order:
            row[f"optimizer_b{b}"] = time_optimizer(batch=b, size=args.size, steps=args.steps)
        row["stylize_ratio"] = row["stylize_b1"]["per_image_s"] / row["stylize_b4"]["per_image_s"]
        row["optimizer_ratio"] = row["optimizer_b1"]["per_image_s"] / row["optimizer_b4"]["per_image_s"]
        rows.append(row)
        print(f"repeat {r}: stylize per image B=1 {row['stylize_b1']['per_image_s']:.2f} s, "
              f"B=4 {row['stylize_b4']['per_image_s']:.2f} s (B=4 {row['stylize_ratio']:.2f}x); optimizer alone "
              f"B=1 {row['optimizer_b1']['per_image_s'] * 1e3:.0f} ms, B=4 {row['optimizer_b4']['per_image_s'] * 1e3:.0f} ms "
              f"per image ({row['optimizer_ratio']:.2f}x); page faults B=1 {row['stylize_b1']['minor_page_faults']}, "
              f"B=4 {row['stylize_b4']['minor_page_faults']}", flush=True)
    summary = {
        "median_stylize_b4_speedup_per_image": statistics.median(r["stylize_ratio"] for r in rows),
        "median_optimizer_b4_speedup_per_image": statistics.median(r["optimizer_ratio"] for r in rows),
        "median_stylize_b1_per_image_s": statistics.median(r["stylize_b1"]["per_image_s"] for r in rows),
        "median_stylize_b4_per_image_s": statistics.median(r["stylize_b4"]["per_image_s"] for r in rows),
        "median_optimizer_b1_per_image_s": statistics.median(r["optimizer_b1"]["per_image_s"] for r in rows),
        "median_optimizer_b4_per_image_s": statistics.median(r["optimizer_b4"]["per_image_s"] for r in rows),
    }
    print("median B=4 speed-up per image: stylize {median_stylize_b4_speedup_per_image:.2f}x, optimizer alone "
          "{median_optimizer_b4_speedup_per_image:.2f}x".format(**summary))
    out = {"benchmark": "batch_scaling", "size": args.size, "torch_threads": torch.get_num_threads(),
           "steps": args.steps, "repeats": args.repeats,
           "network": "vgg19 random weights (seed 0), tutorial objective (benchmarks.transfer_speed), fp32",
           "machine": machine(),
           "keep_freed_memory": os.environ.get(ENV_VAR, "1") != "0", "rows": rows, "summary": summary}
    write_results(args.out, out)


if __name__ == "__main__":
    main()
