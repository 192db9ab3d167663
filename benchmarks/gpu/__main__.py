"""``python -m benchmarks.gpu``: the GPU suite (issue 12 part 1); writes
``benchmarks/results/gpu-<device>.json`` (schema: :mod:`benchmarks.gpu.schema`).

Defaults are the GPU run: 512 px, B in 1,2,4,8,16, the four variants, 20 timed steps after 5 warm-up
ones, reconstructions per layer at B=8, Lite0 classification of 4096 images. ``--device cpu`` with tiny
sizes is the smoke run of the test suite (torch.compile is left out on CPU unless named).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[2]
IMAGES = REPO / "data" / "cue-conflict"


def _ints(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        values = []
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected comma-separated positive integers, got {text!r}")
    return values


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    from benchmarks.gpu.reconstruct import LAYERS
    from benchmarks.gpu.transfer import VARIANTS

    ap = argparse.ArgumentParser(prog="python -m benchmarks.gpu", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda", help="cuda, cuda:N or cpu (default cuda)")
    ap.add_argument("--size", type=int, default=512, help="image side in pixels (default 512)")
    ap.add_argument("--batches", type=_ints, default=[1, 2, 4, 8, 16], help="batch sizes (default 1,2,4,8,16)")
    ap.add_argument("--variants", default=None,
                    help=f"comma-separated from {','.join(VARIANTS)} (default all; on CPU all but compile)")
    ap.add_argument("--steps", type=int, default=20, help="timed L-BFGS steps per configuration (default 20)")
    ap.add_argument("--warmup", type=int, default=5, help="untimed steps first (default 5)")
    ap.add_argument("--reconstruct-batch", type=int, default=8)
    ap.add_argument("--reconstruct-layers", default=",".join(LAYERS))
    ap.add_argument("--reconstruct-variant", default="channels_last")
    ap.add_argument("--classify-images", type=int, default=4096, help="0 skips the classification part")
    ap.add_argument("--classify-batch", type=int, default=256)
    ap.add_argument("--workers", type=int, default=None, help="decoding threads (default: CPU count)")
    ap.add_argument("--images", type=Path, default=IMAGES, help="PNG images (content/style pairs, classification)")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    ap.add_argument("--no-split", action="store_true",
                    help="run every long batched product as one bmm (nstcore.long_bmm off): the A/B of that fix")
    ap.add_argument("--out", type=Path, default=None, help="default benchmarks/results/gpu-<device>.json")
    args = ap.parse_args(argv)
    if args.variants is None:
        args.variants = [v for v in VARIANTS if not (v == "compile" and args.device.startswith("cpu"))]
    else:
        args.variants = [v.strip() for v in args.variants.split(",") if v.strip()]
        unknown = [v for v in args.variants if v not in VARIANTS]
        if unknown or not args.variants:
            ap.error(f"--variants: unknown {unknown}; choose from {', '.join(VARIANTS)}")
    args.reconstruct_layers = [v.strip() for v in args.reconstruct_layers.split(",") if v.strip()]
    if args.reconstruct_variant not in VARIANTS:
        ap.error(f"--reconstruct-variant: choose from {', '.join(VARIANTS)}")
    for name in ("size", "steps", "warmup", "reconstruct_batch", "classify_batch"):
        if getattr(args, name) < (0 if name == "warmup" else 1):
            ap.error(f"--{name.replace('_', '-')} must be positive")
    if args.size < 32:
        ap.error("--size must be >= 32 (VGG-19 pools 4 times before conv5_1)")
    return args


def device_slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def load_images(folder: Path, size: int, n: int) -> tuple[torch.Tensor, list[Path]]:
    """``n`` images from ``folder`` resized (bilinear, antialiased) and centre-cropped to ``size``."""
    from nstcore.images import load_image, pil_to_tensor
    from nstcore.transfer import resize_cover_crop

    paths = sorted(folder.rglob("*.png"))
    if len(paths) < 2:
        raise SystemExit(f"benchmarks.gpu: need PNG images under {folder}, found {len(paths)}; pass --images DIR.")
    step = max(1, len(paths) // n)
    picked = [paths[(i * step) % len(paths)] for i in range(n)]
    batch = torch.stack([resize_cover_crop(pil_to_tensor(load_image(p)).unsqueeze(0), size, size)[0] for p in picked])
    return batch.clamp(0, 1), paths


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    import os

    import nstcore  # noqa: F401  (torchvision shim before torchvision)
    from benchmarks.gpu.classify import run_classify_suite
    from benchmarks.gpu.flops import evaluation_flops
    from benchmarks.gpu.reconstruct import run_reconstruct_suite
    from benchmarks.gpu.schema import SCHEMA, validate
    from benchmarks.gpu.timing import device_info
    from benchmarks.gpu.transfer import run_transfer_suite
    from nstcore.backbones import create_backbone
    from nstcore.transfer import TransferConfig

    try:
        device = torch.device(args.device)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError("CUDA is not available on this machine")
    except (RuntimeError, ValueError) as exc:
        raise SystemExit(f"benchmarks.gpu: --device {args.device}: {exc}; use --device cpu for a smoke run.") from None
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.no_split:
        import nstcore.long_bmm

        nstcore.long_bmm.splits = lambda *shape: False  # long_bmm reads it at every call
    started = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    t0 = time.perf_counter()
    info = device_info(device)
    print(f"device: {info['name']} ({device}); torch {torch.__version__}", flush=True)

    def log(msg: str) -> None:
        print(msg, flush=True)

    n_pairs = max([*args.batches, args.reconstruct_batch])
    images, paths = load_images(args.images, args.size, 2 * n_pairs)
    content, style = images[0::2].to(device), images[1::2].to(device)
    model = create_backbone("vgg19", weights="random", seed=0, device=device)
    transfer, tutorial = run_transfer_suite(model, content, style, size=args.size, batches=args.batches,
                                            variants=args.variants, steps=args.steps, warmup=args.warmup,
                                            device=device, log=log)
    recon = run_reconstruct_suite(model, content[: args.reconstruct_batch], layers=args.reconstruct_layers,
                                  variant=args.reconstruct_variant, size=args.size, steps=args.steps,
                                  warmup=args.warmup, device=device, log=log)
    classify = None
    if args.classify_images > 0:
        workers = args.workers or os.cpu_count() or 1
        try:
            classify = run_classify_suite(paths, device=device, batch=args.classify_batch,
                                          n_images=args.classify_images, workers=workers, log=log)
        except Exception as exc:  # noqa: BLE001 - recorded
            classify = {"error": f"{type(exc).__name__}: {exc}"[:500]}
            log(f"classify failed: {classify['error']}")
    cfg = TransferConfig()
    config = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k != "out"}
    result = {
        "schema": SCHEMA, "device": info, "config": config,
        "flops_per_image_step": evaluation_flops(args.size, list(cfg.content_layers), list(cfg.style_layers))["total"],
        "flops_rule": "2 x conv forward (input-gradient backward = forward) + 3 x Gram forward; benchmarks/gpu/flops.py",
        "transfer": transfer, "tutorial": tutorial, "reconstruct": recon, "classify": classify,
        "started_at": started, "wall_s": time.perf_counter() - t0,
    }
    validate(result)
    out = args.out or REPO / "benchmarks" / "results" / f"gpu-{device_slug(info['name'])}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out} ({result['wall_s']:.0f} s)")
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
