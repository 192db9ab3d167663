"""Activation maximisation throughput (issue 22, "Performance"): objectives per hour of texprobe's batched
renderer (``nstcore.visualize.render``: B objectives in one batch, the network cut after the deepest layer
the batch needs) at B=1 and B=16, beside a reference single-objective loop of the anchors' kind, all in one
run, alternating (this machine's speed drifts).

The reference is written from lucent's ``render_vis`` description (lucid/lucent are not installed here): a
forward hook on the objective's layer, the WHOLE network run every step, one image and one Adam (lr 0.05)
per objective, the same FFT parameterisation and transforms. Per-step cost does not depend on the step, so
``--steps`` small is enough to measure objectives per hour at 256 steps (the rate is scaled to them).

    python -m benchmarks.visualize_throughput [--backbone efficientnet_lite0 --layer stage5] [--size 224]
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


def reference_loop(model, layer: str, channels: list[int], *, size: int, steps: int) -> float:
    """Seconds for ``channels`` one at a time: full network, a hook on ``layer``, one Adam each."""
    from nstcore.visualize.params import ImageParam
    from nstcore.visualize.transforms import robustness

    captured: dict[str, torch.Tensor] = {}
    handle = model.body[layer].register_forward_hook(lambda m, i, o: captured.__setitem__("f", o))
    started = time.perf_counter()
    try:
        for k, channel in enumerate(channels):
            image = ImageParam(kind="fft", batch=1, size=size, seeds=[k])
            opt = torch.optim.Adam(image.parameters(), lr=0.05)
            for step in range(steps):
                opt.zero_grad(set_to_none=True)
                x = robustness(image(), seeds=[k], step=step)
                model.logits(model.normalize(x))  # the whole network, as render_vis runs it
                (-captured["f"][0, channel].mean()).backward()
                opt.step()
    finally:
        handle.remove()
    return time.perf_counter() - started


def batched(model, layer: str, channels: list[int], *, size: int, steps: int, batch: int) -> float:
    """Seconds for ``channels`` ``batch`` at a time through texprobe's renderer."""
    from nstcore.visualize import parse_objective, render

    trimmed = model.trimmed([layer])
    run = lambda x, layers: trimmed(trimmed.normalize(x), layers)  # noqa: E731
    started = time.perf_counter()
    for start in range(0, len(channels), batch):
        chunk = channels[start:start + batch]
        render(run, [parse_objective(f"channel:{layer}:{c}") for c in chunk], size=size, steps=steps,
               seeds=list(range(start, start + len(chunk))))
    return time.perf_counter() - started


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backbone", default="efficientnet_lite0")
    ap.add_argument("--weights", default="imagenet")
    ap.add_argument("--layer", default="stage5")
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--steps", type=int, default=8, help="steps measured (rates are scaled to 256)")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "visualize_throughput.json")
    args = ap.parse_args()
    from nstcore.backbones import create_backbone

    model = create_backbone(args.backbone, weights=args.weights).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    channels = list(range(OBJECTIVES))
    per_hour = lambda seconds: OBJECTIVES * 3600.0 / (seconds * TARGET_STEPS / args.steps)  # noqa: E731
    rows = {"reference": reference_loop(model, args.layer, channels, size=args.size, steps=args.steps),
            "B=1": batched(model, args.layer, channels, size=args.size, steps=args.steps, batch=1),
            "B=16": batched(model, args.layer, channels, size=args.size, steps=args.steps, batch=16)}
    result = {"benchmark": "visualize_throughput", "backbone": args.backbone, "layer": args.layer,
              "size": args.size, "steps_measured": args.steps, "objectives": OBJECTIVES,
              "machine": f"{platform.machine()}, {torch.get_num_threads()} threads, "
                         f"{'cuda' if torch.cuda.is_available() else 'cpu'}",
              "seconds": rows, "objectives_per_hour_at_256_steps": {k: per_hour(v) for k, v in rows.items()},
              "speedup_B16_over_reference": rows["reference"] / rows["B=16"],
              "speedup_B1_over_reference": rows["reference"] / rows["B=1"]}
    print(json.dumps(result, indent=2))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
