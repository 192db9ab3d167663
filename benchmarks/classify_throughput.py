"""Classification throughput: the Ray pipeline (`run_operation('classify', ...)`) against a plain single-process torch
loop over the same images, side by side, alternating, in one run (this machine's speed drifts).

The reference loop is what a researcher writes by hand: Pillow decode, stack a batch, one forward,
softmax, 16-way decision — no Ray, no Parquet. Ours additionally hashes every file, writes Parquet
atomically and keeps a run manifest. Both use the same model, batch size and thread count.

``--startup`` (issue 20 part 2) times both from nothing: the loop with its model construction, ours with
``ray.init`` of a fresh local cluster, the actor's start and model load. ``--copies K`` runs over K hard-linked
copies of every image (12,800 = the 1,280 cue-conflict stimuli x 10), so the start-up is amortised.

    python -m benchmarks.classify_throughput [--images DIR] [--repeats 3] [--startup] [--copies 10]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]


def reference_loop(paths: list[Path], *, model_name: str, batch_size: int, startup: bool = False) -> float:
    """Plain torch: returns images/s (model construction excluded, as for the actors, unless ``startup``)."""
    from nstcore.backbones import create_backbone
    from nstcore.classify import category_probabilities, decide
    from nstcore.images import load_image

    t_start = time.perf_counter()
    model = create_backbone(model_name, weights="imagenet")
    t0 = t_start if startup else time.perf_counter()
    decisions = []
    for start in range(0, len(paths), batch_size):
        x = torch.stack([model.preprocessing.prepare(load_image(p)) for p in paths[start : start + batch_size]])
        with torch.inference_mode():
            probs = torch.softmax(model.logits(model.normalize(x)), dim=1)
        decisions += decide(category_probabilities(probs))
    return len(paths) / (time.perf_counter() - t0)


def ray_pipeline(image_dir: Path, n: int, *, model_name: str, batch_size: int,
                 startup: bool = False) -> tuple[float, float]:
    """Ours: (images/s of the whole job including actor start, job seconds); with ``startup`` the job starts
    (and ends) its own local Ray cluster, whose start is timed too."""
    import ray

    from pipelines.ops.classify import ClassifyConfig
    from pipelines.runner import run_operation
    from pipelines.store import Store

    config = ClassifyConfig(inputs=(str(image_dir),), model=model_name, batch_size=batch_size, unit_size=64)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        if startup:
            ray.init(include_dashboard=False, logging_level="ERROR", log_to_driver=False)
        try:
            res = run_operation("classify", config, store=Store(tmp), show_progress=False)
        finally:
            if startup:
                ray.shutdown()
        seconds = time.perf_counter() - t0 if startup else res.seconds
    assert res.status == "finished" and res.counts["trials"] == n, res.counts
    return n / seconds, seconds


def linked_copies(images: Path, copies: int, root: Path) -> Path:
    """``copies`` hard links of every image of ``images`` under ``root`` (names keep their labels)."""
    out = root / "copies"
    for k in range(copies):
        for src in sorted(images.rglob("*.png")):
            dst = out / f"c{k:02d}" / src.relative_to(images)
            dst.parent.mkdir(parents=True, exist_ok=True)
            os.link(src, dst)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--images", type=Path, default=REPO / "data" / "cue-conflict")
    ap.add_argument("--model", default="efficientnet_lite0")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--startup", action="store_true", help="time both from nothing (ray.init, model load)")
    ap.add_argument("--copies", type=int, default=1, help="hard-linked copies of every image")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "classify_throughput.json")
    args = ap.parse_args()

    import ray

    scratch = tempfile.TemporaryDirectory(prefix="tpcls")
    images = args.images if args.copies == 1 else linked_copies(args.images, args.copies, Path(scratch.name))
    paths = sorted(p for p in images.rglob("*.png"))
    t0 = time.perf_counter()
    if not args.startup:
        ray.init(include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    ray_start = time.perf_counter() - t0
    rows = []
    try:
        for r in range(args.repeats):
            ref = reference_loop(paths, model_name=args.model, batch_size=args.batch_size, startup=args.startup)
            ours, secs = ray_pipeline(images, len(paths), model_name=args.model, batch_size=args.batch_size,
                                      startup=args.startup)
            rows.append({"repeat": r, "reference_img_s": ref, "ray_img_s": ours, "ray_job_s": secs, "ratio": ours / ref})
            print(f"repeat {r}: reference {ref:.1f} img/s, ray pipeline {ours:.1f} img/s, ratio {ours / ref:.3f}",
                  flush=True)
    finally:
        if ray.is_initialized():
            ray.shutdown()
        scratch.cleanup()
    result = {
        "benchmark": "classify_throughput",
        "model": args.model,
        "images": len(paths),
        "batch_size": args.batch_size,
        "torch_threads": torch.get_num_threads(),
        "machine": f"{platform.machine()} {torch.get_num_threads()} threads, {platform.python_version()}",
        "ray_init_s": None if args.startup else ray_start,
        "startup_included": args.startup,
        "copies": args.copies,
        "rows": rows,
        "median_ratio": statistics.median(r["ratio"] for r in rows),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(f"median ratio (ray / plain loop): {result['median_ratio']:.3f}; ray.init took {ray_start:.1f} s")


if __name__ == "__main__":
    main()
