"""Activation maximisation throughput (issue 22, "Performance"): objectives per hour of texprobe's batched
renderer (``nstcore.visualize.render``: B objectives in one batch, the network cut after the deepest layer
the batch needs) at B=1 and B=16, beside a reference single-objective loop of the anchors' kind, all in one
run, alternating (this machine's speed drifts).

The reference is written from lucent's ``render_vis`` description (lucid/lucent are not installed here): a
forward hook on the objective's layer, the WHOLE network run every step, one image and one Adam (lr 0.05)
per objective, the same FFT parameterisation and transforms. Per-step cost does not depend on the step, so
``--steps`` small is enough to measure objectives per hour at 256 steps (the rate is scaled to them).

    python -m benchmarks.visualize_throughput [--backbone efficientnet_lite0 --layer stage5] [--size 224]
    python -m benchmarks.visualize_throughput --device cuda --steps 32 --out benchmarks/results/visualize_throughput_gpu.json
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
OBJECTIVES = 16
TARGET_STEPS = 256


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def reference_loop(model, layer: str, channels: list[int], *, size: int, steps: int) -> float:
    """Seconds for ``channels`` one at a time: full network, a hook on ``layer``, one Adam each."""
    from nstcore.visualize.params import ImageParam
    from nstcore.visualize.transforms import robustness

    captured: dict[str, torch.Tensor] = {}
    handle = model.body[layer].register_forward_hook(lambda m, i, o: captured.__setitem__("f", o))
    device = model._mean.device
    x = torch.rand(1, 3, size, size, device=device, requires_grad=True)  # one warm-up step, as texprobe's
    model.logits(model.normalize(x))
    captured["f"][0, 0].mean().backward()
    _sync(device)
    started = time.perf_counter()
    try:
        for k, channel in enumerate(channels):
            image = ImageParam(kind="fft", batch=1, size=size, seeds=[k]).to(device)
            opt = torch.optim.Adam(image.parameters(), lr=0.05)
            for step in range(steps):
                opt.zero_grad(set_to_none=True)
                x = robustness(image(), seeds=[k], step=step)
                model.logits(model.normalize(x))  # the whole network, as render_vis runs it
                (-captured["f"][0, channel].mean()).backward()
                opt.step()
        _sync(device)
    finally:
        handle.remove()
    return time.perf_counter() - started


def batched(model, layer: str, channels: list[int], *, size: int, steps: int, batch: int, fast: bool = False) -> float:
    """Seconds for ``channels`` ``batch`` at a time through texprobe's renderer, with the network prepared as
    ``texprobe visualize`` prepares it (batch norm folded; ``fast``: bf16 autocast and channels_last, as
    ``--bf16 --channels-last``), one warm-up step first (as the reference)."""
    from nstcore.backbones.fold_batchnorm import fold_batchnorm
    from nstcore.visualize import parse_objective, render, with_precision

    trimmed = fold_batchnorm(model.trimmed([layer]))
    if fast:
        trimmed = trimmed.to(memory_format=torch.channels_last)
    run = with_precision(lambda x, layers: trimmed(trimmed.normalize(x), layers), bf16=fast, channels_last=fast)
    device = model._mean.device
    render(run, [parse_objective(f"channel:{layer}:{c}") for c in channels[:batch]], size=size, steps=1,
           device=device)
    _sync(device)
    started = time.perf_counter()
    for start in range(0, len(channels), batch):
        chunk = channels[start:start + batch]
        render(run, [parse_objective(f"channel:{layer}:{c}") for c in chunk], size=size, steps=steps,
               seeds=list(range(start, start + len(chunk))), device=device)
    _sync(device)
    return time.perf_counter() - started


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backbone", default="efficientnet_lite0")
    ap.add_argument("--weights", default="imagenet")
    ap.add_argument("--layer", default="stage5")
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--device", default="cpu", help="cpu or cuda (on a GPU: --device cuda --steps 32)")
    ap.add_argument("--steps", type=int, default=8, help="steps measured (rates are scaled to 256)")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "visualize_throughput.json")
    args = ap.parse_args()
    from nstcore.backbones import create_backbone

    model = create_backbone(args.backbone, weights=args.weights, device=args.device).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    channels = list(range(OBJECTIVES))
    per_hour = lambda seconds: OBJECTIVES * 3600.0 / (seconds * TARGET_STEPS / args.steps)  # noqa: E731
    rows = {"reference": reference_loop(model, args.layer, channels, size=args.size, steps=args.steps),
            "B=1": batched(model, args.layer, channels, size=args.size, steps=args.steps, batch=1),
            "B=16": batched(model, args.layer, channels, size=args.size, steps=args.steps, batch=16),
            "B=1 bf16+channels_last": batched(model, args.layer, channels, size=args.size, steps=args.steps, batch=1,
                                              fast=True),
            "B=16 bf16+channels_last": batched(model, args.layer, channels, size=args.size, steps=args.steps,
                                               batch=16, fast=True)}
    result = {"benchmark": "visualize_throughput", "backbone": args.backbone, "layer": args.layer,
              "size": args.size, "steps_measured": args.steps, "objectives": OBJECTIVES,
              "machine": f"{platform.machine()}, {torch.get_num_threads()} threads, "
                         + (torch.cuda.get_device_name(args.device) if args.device.startswith("cuda") else "cpu"),
              "seconds": rows, "objectives_per_hour_at_256_steps": {k: per_hour(v) for k, v in rows.items()},
              "speedup_B16_over_reference": rows["reference"] / rows["B=16"],
              "speedup_B1_over_reference": rows["reference"] / rows["B=1"],
              "speedup_B16_bf16_channels_last_over_reference": rows["reference"] / rows["B=16 bf16+channels_last"],
              "cpu_bf16_native": bool(getattr(torch.backends.mkldnn, "is_available", lambda: False)()
                                      and torch.ops.mkldnn._is_mkldnn_bf16_supported())}
    print(json.dumps(result, indent=2))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
