"""Where one style-transfer step's time goes: ``torch.profiler`` over a few L-BFGS steps of the suite's
production path (:func:`benchmarks.gpu.transfer.gatys_loss` + ``minimize_pixels``), the top operators by
device time (CPU time on ``--device cpu``).

    python -m benchmarks.gpu.profile_transfer --device cuda --batch 2 --variant fp32 [--steps 5] [--top 15]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

import nstcore  # noqa: F401  (torchvision shim before torchvision)
from benchmarks.gpu.__main__ import IMAGES, load_images
from benchmarks.gpu.transfer import VARIANTS, gatys_loss, timed_minimize
from nstcore.backbones import create_backbone


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--variant", default="fp32", choices=list(VARIANTS))
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--top", type=int, default=15)
    ap.add_argument("--images", type=Path, default=IMAGES, help="PNG images (content/style pairs)")
    args = ap.parse_args(argv)
    device = torch.device(args.device)
    images, _ = load_images(args.images, args.size, 2 * args.batch)
    content, style = images[0::2].to(device), images[1::2].to(device)
    model = create_backbone("vgg19", weights="random", seed=0, device=device)
    autocast, channels_last, _ = VARIANTS[args.variant]
    loss, _ = gatys_loss(model, autocast=autocast, channels_last=channels_last)
    loss.set_targets(content=content, style=style)

    def objective(x: torch.Tensor) -> torch.Tensor:
        return loss(x).total

    timed_minimize(objective, content.clone(), steps=2, warmup=1, device=device)  # warm-up
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=activities) as prof:
        per_step, _ = timed_minimize(objective, content.clone(), steps=args.steps, warmup=1, device=device)
    key = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
    print(f"{args.variant} B={args.batch} {args.size} px: {per_step * 1e3:.1f} ms/step")
    print(prof.key_averages().table(sort_by=key, row_limit=args.top, max_name_column_width=60))


if __name__ == "__main__":
    main()
