"""Driver memory and time per image of one run over 10,000 to 1,000,000 images, and the same run on an older
commit side by side (issue 20: the driver must stay flat as the image set grows).

The images are hard links to copies of the 240 bundled stimuli, cycled up to N, in folders of 1,000
(ImageNet's layout: one folder per class), so listing them costs a stat each and decoding costs nothing.
The operation is :class:`~benchmarks.header_op.HeaderOp`: it reads each image's header (Pillow, no decode)
and writes one ``trials`` row per image, so the run exercises exactly the driver's side of a real run
(folder walk, plan stored and streamed back, actor pool, per-unit parts, counts, compaction) in seconds
per 10,000 images; the model's own memory lives in the actors and does not grow with N.

Every (code, N) runs in its own process (its own Ray cluster, so start-up is paid the same way by every
row), which reports its peak RSS (``VmHWM`` of /proc/self/status: the driver's high-water mark since its
exec; ``ru_maxrss`` would include the forking parent's) and its wall time. ``--old COMMIT`` extracts that commit's tree (``git archive``) into a temporary folder and runs
its own ``run_operation`` and ``HeaderOp`` with the same interpreter on the same folders.

    python -m benchmarks.driver_memory --sizes 10000 200000 1000000 --old b05aeed --old-sizes 200000
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PER_FOLDER = 1000

#: The child: runs one header-op run with the code found first on sys.path and prints one JSON line.
CHILD = """
import json, sys, time
started = time.perf_counter()
from benchmarks.header_op import HeaderConfig, HeaderOp
from pipelines.ray_runtime import Placement
from pipelines.runner import run_operation
from pipelines.store import Store
images, store = sys.argv[1], sys.argv[2]
if len(sys.argv) > 3:  # a private cluster in this temp dir (the tests), else run_operation starts one
    import ray
    ray.init(num_cpus=2, include_dashboard=False, _temp_dir=sys.argv[3], logging_level="ERROR")
report = run_operation(HeaderOp(), HeaderConfig(inputs=(images,)), store=Store(store),
                       placement=Placement(actors=1, cpus_per_actor=1), show_progress=False)
# VmHWM: this process image's peak RSS (ru_maxrss would carry over the forking parent's from before exec)
peak = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(json.dumps({"units": report.n_units, "trials": report.counts["trials"], "status": report.status,
                  "seconds": time.perf_counter() - started, "peak_rss_mib": peak / 1024}))
"""


def make_images(folder: Path, n: int, pool: Path) -> Path:
    """``n`` hard links to the files of ``pool``, cycled, in sub-folders of :data:`PER_FOLDER` (distinct
    paths: the image set keeps one entry per real path; the names keep ``<shape><n>-<texture><m>``)."""
    sources = sorted(pool.iterdir())
    for i in range(n):
        sub = folder / f"{i // PER_FOLDER:05d}"
        if i % PER_FOLDER == 0:
            sub.mkdir(parents=True)
        src = sources[i % len(sources)]
        os.link(src, sub / f"{src.stem}-{i:07d}.png")
    return folder


def run_child(code: Path, images: Path, store: Path, ray_temp_dir: str | None = None) -> dict:
    """One run in a fresh interpreter with ``code`` first on its path: its result, wall time, peak RSS."""
    env = {**os.environ, "PYTHONPATH": str(code), "RAY_DEDUP_LOGS": "0"}
    env.pop("RAY_ADDRESS", None)
    extra = [ray_temp_dir] if ray_temp_dir else []
    proc = subprocess.run([sys.executable, "-c", CHILD, str(images), str(store), *extra], cwd=code, env=env,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"benchmark child failed ({code}):\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 200_000, 1_000_000])
    parser.add_argument("--old", default=None, help="a commit to run side by side (e.g. b05aeed)")
    parser.add_argument("--old-sizes", type=int, nargs="*", default=[200_000])
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "driver_memory.json"))
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="tpmem") as tmp:
        root = Path(tmp)
        pool = root / "pool"
        pool.mkdir()
        for src in sorted((REPO / "data" / "cue-conflict").rglob("*.png")):
            shutil.copyfile(src, pool / src.name)
        codes = {"new": REPO}
        if args.old:
            old = root / "old"
            old.mkdir()
            archive = subprocess.run(["git", "-C", str(REPO), "archive", args.old], capture_output=True, check=True)
            subprocess.run(["tar", "-x", "-C", str(old)], input=archive.stdout, check=True)
            codes[f"old {args.old}"] = old
        for n in sorted(set(args.sizes) | set(args.old_sizes if args.old else [])):
            images = make_images(root / f"imgs{n}", n, pool)
            for label, code in codes.items():
                if label != "new" and n not in args.old_sizes:
                    continue
                if label == "new" and n not in args.sizes:
                    continue
                result = run_child(code, images, root / f"store-{n}-{len(rows)}")
                rows.append({"code": label, "images": n, **result,
                             "us_per_image": round(result["seconds"] / n * 1e6, 1)})
                print(json.dumps(rows[-1]), flush=True)
                shutil.rmtree(root / f"store-{n}-{len(rows) - 1}", ignore_errors=True)
            shutil.rmtree(images)
    new = {r["images"]: r for r in rows if r["code"] == "new"}
    smallest = new[min(new)] if new else None
    summary = {}
    if smallest:
        for n, r in sorted(new.items()):
            summary[f"rss_{n}_over_{smallest['images']}"] = round(r["peak_rss_mib"] / smallest["peak_rss_mib"], 3)
            summary[f"us_per_image_{n}"] = r["us_per_image"]
    for r in rows:
        if r["code"] != "new" and r["images"] in new:
            summary[f"speedup_{r['images']}_vs_{r['code'].split()[-1]}"] = round(r["seconds"] / new[r["images"]]["seconds"], 2)
            summary[f"rss_{r['images']}_old_over_new"] = round(r["peak_rss_mib"] / new[r["images"]]["peak_rss_mib"], 2)
    print(json.dumps(summary))
    Path(args.out).write_text(json.dumps({"benchmark": "driver_memory", "per_folder": PER_FOLDER, "rows": rows,
                                         "summary": summary}, indent=2) + "\n")


if __name__ == "__main__":
    main()
