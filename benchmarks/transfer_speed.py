"""Style-transfer speed: ``nstcore.transfer.stylize`` against the classic single-image fp32 loop (the
PyTorch "Neural Transfer" tutorial algorithm, :mod:`benchmarks.reference.tutorial_nst`), side by side,
alternating, in one run (this machine's speed drifts), at the same size and step count.

Both sides optimise the SAME objective on the SAME network: VGG-19 with random weights (seed 0; random
weights cost the same FLOPs as ImageNet ones, none are bundled), Gatys layers (content conv4_2, style
conv1_1..conv5_1; the tutorial itself uses conv_4 / conv_1..conv_5), Gram / (C*H*W), mean squared
errors, style weight 1e6, content weight 1, start from the content image, clamp to [0, 1] every step.
This is checked before timing (equal losses on a test image). Ours keeps its defaults otherwise
(``normalize_loss``, ``keep_best``: a few extra no-grad forward passes, charged to ours).

L-BFGS may stop early, and the tutorial loop runs at least ``steps + 1`` evaluations: forward passes
are counted on both sides with a hook on conv1_1 (input requiring grad = an evaluation with gradient;
otherwise a no-grad/target forward), and the time per evaluation (seconds / gradient evaluations, all
other forwards charged to it) is reported beside the time per image. The tutorial's outer loop calls
``LBFGS.step`` (max_iter 20) until more than ``num_steps`` evaluations ran, overshooting by up to 20; here
it gets ``max_iter=steps, num_steps=steps - 1``: one step call of ``steps`` iterations, like ours.

Also prints the analytic FLOP count of VGG-19 up to conv5_1 (for GPU roofline comparisons).

    python -m benchmarks.transfer_speed [--sizes 128,256] [--steps 5] [--repeats 2]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import nstcore  # noqa: F401  (torchvision shim first)
import torch
import torchvision

from benchmarks._results import machine, write_results
from benchmarks.reference import tutorial_nst
from nstcore.backbones import create_backbone
from nstcore.images import load_image, pil_to_tensor
from nstcore.losses import ContentLoss, PerceptualLoss, StyleLoss
from nstcore.transfer import TransferConfig, resize_cover_crop, stylize

REPO = Path(__file__).resolve().parents[1]

#: VGG-19 convolutions up to conv5_1 (Simonyan & Zisserman 2015, Table 1, column E): name, C_in, C_out,
#: downsampling factor of the input (each pool halves it).
VGG19_CONVS_TO_CONV5_1: tuple[tuple[str, int, int, int], ...] = (
    ("conv1_1", 3, 64, 1), ("conv1_2", 64, 64, 1),
    ("conv2_1", 64, 128, 2), ("conv2_2", 128, 128, 2),
    ("conv3_1", 128, 256, 4), ("conv3_2", 256, 256, 4), ("conv3_3", 256, 256, 4), ("conv3_4", 256, 256, 4),
    ("conv4_1", 256, 512, 8), ("conv4_2", 512, 512, 8), ("conv4_3", 512, 512, 8), ("conv4_4", 512, 512, 8),
    ("conv5_1", 512, 512, 16),
)


def vgg19_forward_flops(size: int) -> float:
    """Forward FLOPs of the 3x3 convolutions up to conv5_1 for a ``size`` x ``size`` image:
    ``sum 2 * H * W * C_in * C_out * 9`` (multiply + add; ReLU, pooling, bias and the losses ignored)."""
    return float(sum(2 * (size // d) ** 2 * cin * cout * 9 for _, cin, cout, d in VGG19_CONVS_TO_CONV5_1))


class BenchmarkCheckError(RuntimeError):
    """Ours and the reference do not compute the same objective: the timing would compare different work."""


class ForwardCounter:
    """Counts forward passes through a module: with an input that requires grad (evaluations with
    gradient) and without (targets, no-grad evaluations)."""

    def __init__(self, module: torch.nn.Module) -> None:
        self.grad = 0
        self.no_grad = 0
        self._handle = module.register_forward_hook(self._hook)

    def _hook(self, module, inputs, output) -> None:
        if inputs[0].requires_grad:
            self.grad += 1
        else:
            self.no_grad += 1

    def reset(self) -> None:
        self.grad = self.no_grad = 0

    def __repr__(self) -> str:
        return f"ForwardCounter(grad={self.grad}, no_grad={self.no_grad})"


def objective_config(steps: int, dtype: str) -> TransferConfig:
    """The tutorial's objective expressed as a TransferConfig (Gatys layers)."""
    return TransferConfig(
        content_layers={layer: 1.0 for layer in tutorial_nst.CONTENT_LAYERS},
        style_layers={layer: 1.0 for layer in tutorial_nst.STYLE_LAYERS},
        statistic="gram", statistic_options={"normalization": "chw", "reduction": "mean"},
        content_weight=1.0, style_weight=1e6, init="content", optimizer="lbfgs", lr=1.0, steps=steps,
        size=None, clamp_every_step=True, dtype=dtype,
    )


def reference_features(model) -> torch.nn.Sequential:
    """A torchvision VGG-19 ``features`` holding the same weights as texprobe's extractor ``model``."""
    features = torchvision.models.vgg19(weights=None).features
    for (name, ours_module), module in zip(model.body.items(), features):
        if isinstance(module, torch.nn.Conv2d):
            module.load_state_dict(ours_module.state_dict())
    return features.eval()


def check_objective(model, features, content: torch.Tensor, style: torch.Tensor) -> float:
    """Both objectives at a test image (halfway between content and style); returns the relative error."""
    x = (0.5 * content + 0.5 * style)[:1]
    config = objective_config(1, "float32")
    loss = PerceptualLoss(model, content=[ContentLoss(layer) for layer in config.content_layers],
                          style=StyleLoss(dict(config.style_layers), statistic=config.build_statistic()),
                          content_weight=config.content_weight, style_weight=config.style_weight)
    loss.set_targets(content=content[:1], style=style[:1])
    with torch.no_grad():
        ours = float(loss(x).total[0])
        ref_model, style_losses, content_losses = tutorial_nst.build_model(
            features, mean=model.preprocessing.mean, std=model.preprocessing.std,
            style_img=style[:1], content_img=content[:1])
        ref_model(x)
        ref = float(1e6 * sum(s.loss for s in style_losses) + sum(c.loss for c in content_losses))
    err = abs(ours - ref) / abs(ref)
    if err > 1e-4:
        raise BenchmarkCheckError(f"objective mismatch: ours {ours:.6g} vs tutorial {ref:.6g} (rel. error {err:.1e}).")
    return err


def run_reference(features, model, content, style, steps: int, counter: ForwardCounter) -> dict:
    counter.reset()
    t0 = time.perf_counter()
    _, evals = tutorial_nst.run_style_transfer(
        features, mean=model.preprocessing.mean, std=model.preprocessing.std, content_img=content[:1],
        style_img=style[:1], input_img=content[:1].clone(), num_steps=steps - 1, max_iter=steps)
    secs = time.perf_counter() - t0
    return {"seconds": secs, "images": 1, "closure_evals": evals, "grad_forwards": counter.grad, "other_forwards": counter.no_grad}


def run_ours(model, content, style, steps: int, batch: int, dtype: str, counter: ForwardCounter) -> dict:
    counter.reset()
    t0 = time.perf_counter()
    result = stylize(model, content[:batch], style[:batch], config=objective_config(steps, dtype))
    secs = time.perf_counter() - t0
    return {"seconds": secs, "images": batch, "n_iter": result.n_iter.tolist(), "grad_forwards": counter.grad,
            "other_forwards": counter.no_grad}


def load_pairs(image_dir: Path, size: int, n: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` content images and ``n`` style images (other cue-conflict images), ``size`` x ``size``."""
    paths = sorted(image_dir.rglob("*.png"))
    if len(paths) < 2 * n:
        raise SystemExit(f"transfer_speed: need {2 * n} PNG images under {image_dir}, found {len(paths)}.")
    step = len(paths) // (2 * n)
    picked = [pil_to_tensor(load_image(paths[i * step])) for i in range(2 * n)]
    batch = torch.stack([resize_cover_crop(p.unsqueeze(0), size, size)[0] for p in picked]).clamp(0, 1)
    return batch[0::2].contiguous(), batch[1::2].contiguous()


VARIANTS: tuple[tuple[str, int, str], ...] = (
    ("ours_b1_fp32", 1, "float32"), ("ours_b4_fp32", 4, "float32"),
    ("ours_b1_bf16", 1, "bfloat16"), ("ours_b4_bf16", 4, "bfloat16"),
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=Path, default=REPO / "data" / "cue-conflict")
    ap.add_argument("--sizes", default="128,256")
    ap.add_argument("--steps", type=int, default=5,
                    help="L-BFGS iterations on both sides (tutorial: one LBFGS.step call with max_iter=steps)")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "transfer_speed.json")
    args = ap.parse_args()

    fwd512 = vgg19_forward_flops(512)
    flops = {"size": 512, "forward_gflop": fwd512 / 1e9,
             "step_frozen_weights_gflop": 2 * fwd512 / 1e9,
             "step_with_weight_grads_gflop": 3 * fwd512 / 1e9}
    print(f"VGG-19 up to conv5_1 @ 512 px: forward {fwd512 / 1e9:.1f} GFLOP; one L-BFGS evaluation (forward + "
          f"input-gradient backward, weights frozen) ~ 2 x {fwd512 / 1e9:.1f} = {2 * fwd512 / 1e9:.0f} GFLOP "
          f"(3 x = {3 * fwd512 / 1e9:.0f} if weight gradients were also computed)")

    model = create_backbone("vgg19", weights="random", seed=0)
    features = reference_features(model)
    ours_counter = ForwardCounter(model.body["conv1_1"])
    ref_counter = ForwardCounter(features[0])
    sizes_out = []
    for size in [int(s) for s in args.sizes.split(",") if s.strip()]:
        content, style = load_pairs(args.images, size)
        err = check_objective(model, features, content, style)
        print(f"{size}px: objectives agree (rel. error {err:.1e}); steps {args.steps}")
        # warm-up (oneDNN primitive creation) of every variant, untimed
        run_reference(features, model, content, style, 1, ref_counter)
        for _, batch, dtype in VARIANTS:
            run_ours(model, content, style, 1, batch, dtype, ours_counter)
        rows = []
        for r in range(args.repeats):
            sides = ["reference", *[v[0] for v in VARIANTS]]
            if r % 2:
                sides.reverse()  # alternate the order so that a drift hits every variant alike
            row: dict = {"repeat": r}
            for side in sides:
                if side == "reference":
                    m = run_reference(features, model, content, style, args.steps, ref_counter)
                else:
                    _, batch, dtype = next(v for v in VARIANTS if v[0] == side)
                    m = run_ours(model, content, style, args.steps, batch, dtype, ours_counter)
                m["per_image_s"] = m["seconds"] / m["images"]
                m["per_image_eval_s"] = m["seconds"] / (m["grad_forwards"] * m["images"])
                row[side] = m
            for side, _, _ in VARIANTS:
                row[side]["speedup_per_image"] = row["reference"]["per_image_s"] / row[side]["per_image_s"]
                row[side]["speedup_per_eval"] = row["reference"]["per_image_eval_s"] / row[side]["per_image_eval_s"]
            rows.append(row)
            print(f"  repeat {r}: " + ", ".join(
                f"{s} {row[s]['per_image_s']:.2f} s/img ({row[s]['grad_forwards']}+{row[s]['other_forwards']} fwd)"
                for s in ["reference", *[v[0] for v in VARIANTS]]))
        summary = {"reference_per_image_s": statistics.median(r["reference"]["per_image_s"] for r in rows),
                   "reference_per_image_eval_s": statistics.median(r["reference"]["per_image_eval_s"] for r in rows)}
        for side, _, _ in VARIANTS:
            summary[side] = {
                "per_image_s": statistics.median(r[side]["per_image_s"] for r in rows),
                "per_image_eval_s": statistics.median(r[side]["per_image_eval_s"] for r in rows),
                "median_speedup_per_image": statistics.median(r[side]["speedup_per_image"] for r in rows),
                "median_speedup_per_eval": statistics.median(r[side]["speedup_per_eval"] for r in rows),
            }
        print(f"{size}px medians: reference {summary['reference_per_image_s']:.2f} s/img "
              f"({summary['reference_per_image_eval_s']:.3f} s/eval)")
        for side, _, _ in VARIANTS:
            s = summary[side]
            print(f"  {side}: {s['per_image_s']:.2f} s/img ({s['per_image_eval_s']:.3f} s/eval); speed-up vs reference "
                  f"{s['median_speedup_per_image']:.2f}x per image, {s['median_speedup_per_eval']:.2f}x per evaluation")
        sizes_out.append({"size": size, "steps": args.steps, "objective_rel_error": err,
                          "forward_gflop_per_image": vgg19_forward_flops(size) / 1e9, "rows": rows, "summary": summary})
    result = {
        "benchmark": "transfer_speed",
        "network": "vgg19 random weights (seed 0), max pooling, content conv4_2, style conv1_1..conv5_1",
        "objective": "tutorial: Gram/(C*H*W), MSE, style weight 1e6, content weight 1, init content, clamp every step",
        "flops_vgg19_to_conv5_1": flops,
        "torch_threads": torch.get_num_threads(),
        "machine": machine(),
        "sizes": sizes_out,
    }
    write_results(args.out, result)


if __name__ == "__main__":
    main()
