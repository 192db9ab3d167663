#!/usr/bin/env bash
# One device session's GPU checks, in priority order, each under its own time limit so that a part that
# hangs or fails leaves the others' results. Needs python3 with torch, numpy and Pillow only.
#   bash benchmarks/gpu/session.sh OUTDIR        (on the device tool's machine: OUTDIR=$OUT)
# ~4 minutes on an H200. Lite0's ImageNet weights travel as a carried copy of their package on
# PYTHONPATH (see BENCHMARKS.md, "GPU suite"); without them the Lite0 visualisation row fails and the
# rest still runs. Writes 6 files (the device tool brings back at most 8): 4 JSON results,
# summary.txt (one line per part) and session.log (every part's output; the visualisation and statistic-cost
# results are printed there in full and written under /tmp on the device).
set -u
out=${1:?usage: session.sh OUTDIR}
mkdir -p "$out"
export PYTHONUNBUFFERED=1
py=${PYTHON:-python3}
log=$out/session.log
parts=${GPU_PARTS:-}  # optional space-separated subset of part names (a short loan); empty runs every part
part() {  # part NAME SECONDS CMD...: CMD under a time limit; output appended to session.log
    local name=$1 limit=$2; shift 2
    if [ -n "$parts" ] && [[ " $parts " != *" $name "* ]]; then return; fi
    local t0=$SECONDS
    echo "== $name: $*" >>"$log"
    timeout "$limit" "$@" >>"$log" 2>&1
    echo "$name rc=$? $((SECONDS - t0))s" | tee -a "$out/summary.txt"
}
{ nvidia-smi -L; $py -c 'import sys, torch; print(sys.version.split()[0], torch.__version__, torch.cuda.get_device_name())'; } \
    >"$out/summary.txt" 2>&1
cat "$out/summary.txt"
part suite 200 $py -m benchmarks.gpu --device cuda --variants fp32,bf16,channels_last --out "$out/gpu-suite.json"
part suite_no_split 90 $py -m benchmarks.gpu --device cuda --variants fp32,channels_last --classify-images 0 \
    --reconstruct-layers relu1_1,relu5_1 --no-split --out "$out/gpu-suite-no-split.json"
part long_products 60 $py -m benchmarks.gpu.long_products --out "$out/long_products_gpu.json"
part visualize_lite0 90 $py -m benchmarks.visualize_throughput --device cuda --steps 32 \
    --out /tmp/visualize_throughput_gpu.json
part visualize_vgg19 60 $py -m benchmarks.visualize_throughput --device cuda --backbone vgg19 --weights random \
    --layer conv4_1 --steps 16 --out /tmp/visualize_throughput_gpu_vgg19.json
part statistic_cost 60 $py -m benchmarks.statistic_cost --device cuda --size 512 --repeats 10 \
    --out /tmp/statistic_cost_gpu.json
cat /tmp/statistic_cost_gpu.json >>"$log" 2>/dev/null
part suite_compile 150 $py -m benchmarks.gpu --device cuda --variants compile --batches 16 --classify-images 0 \
    --reconstruct-layers relu5_1 --out "$out/gpu-suite-compile.json"
grep -v "^E[0-9]\{4\} " "$log" | tail -n 120
