"""Batched products with a long reduction on the GPU: ``torch.bmm`` against one GEMM per batch entry
(:func:`nstcore.long_bmm.long_bmm`), for the shapes texprobe's loops run every L-BFGS step at 512 px:
the Grams of VGG-19's style layers (``[B, C, HW] @ [B, HW, C]``), the L-BFGS history products
(``[B, 2m, D] @ [B, D, 3]``, D = 3 x 512 x 512) and the row-wise dot products (``[B, 1, D] @ [B, D, 1]``).

    python -m benchmarks.gpu.long_products [--device cuda] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from nstcore.long_bmm import long_bmm

D = 3 * 512 * 512
SHAPES = {  # name -> (M, K, N)
    "gram conv1_1 (64 x 262144)": (64, 512 * 512, 64),
    "gram conv2_1 (128 x 65536)": (128, 256 * 256, 128),
    "gram conv3_1 (256 x 16384)": (256, 128 * 128, 256),
    "gram conv4_1 (512 x 4096)": (512, 64 * 64, 512),
    "history 2m=50 rows x D": (50, D, 3),
    "history 2m=200 rows x D": (200, D, 3),
    "row dot [1 x D]": (1, D, 1),
}


def _time(fn, device: torch.device, repeats: int) -> float:
    fn()
    torch.cuda.synchronize(device) if device.type == "cuda" else None
    t0 = time.perf_counter()
    for _ in range(repeats):
        fn()
    torch.cuda.synchronize(device) if device.type == "cuda" else None
    return (time.perf_counter() - t0) / repeats


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--batches", default="1,2,16")
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    device = torch.device(args.device)
    rows = []
    for name, (m, k, n) in SHAPES.items():
        for batch in [int(v) for v in args.batches.split(",")]:
            a = torch.randn(batch, m, k, device=device)
            b = a.transpose(1, 2)[:, :, :n] if name.startswith("gram") else torch.randn(batch, n, k, device=device).transpose(1, 2)
            bmm_s = _time(lambda: torch.bmm(a, b), device, args.repeats)
            split_s = _time(lambda: long_bmm(a, b), device, args.repeats)
            ref = torch.bmm(a.double(), b.double())
            err = ((long_bmm(a, b).double() - ref).abs().max() / ref.abs().max()).item()
            row = {"shape": name, "batch": batch, "bmm_ms": bmm_s * 1e3, "long_bmm_ms": split_s * 1e3,
                   "speedup": bmm_s / split_s, "max_rel_error_vs_float64": err}
            rows.append(row)
            print(f"{name:<28} B={batch:<3} bmm {row['bmm_ms']:8.3f} ms   long_bmm {row['long_bmm_ms']:8.3f} ms  "
                  f"({row['speedup']:.1f}x)  err {err:.1e}", flush=True)
            del a, b, ref
    result = {"benchmark": "long_products", "device": torch.cuda.get_device_name(device) if device.type == "cuda"
              else "cpu", "torch": torch.__version__, "rows": rows}
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
