#!/usr/bin/env bash
# Issue #4 on a GPU machine (the device tool; `source .device/setup.sh` first): build, the conformance
# suite on cuda:0, compute-sanitizer memcheck over the small cases, the torch peers and stile's CUDA
# backend on HunyuanVideo 720p (window 3x3x3 and 5x5x5, d 128 and 64) in one run, and the chart.
#   STILE_COMMIT=<commit> bash bench/cuda-run.sh        (results in $OUT, default ./gpu-out)
set -uo pipefail
source "$(dirname "$0")/gpu-common.sh"
echo "== conformance on cuda:0"
$S conformance --device cuda:0 --json "$out/conformance-cuda.json" --markdown "$out/conformance-cuda.md" | grep -vE "^  pass"
echo "== compute-sanitizer memcheck (cases without sampling)"
compute-sanitizer --tool memcheck --error-exitcode 9 $S conformance --device cuda:0 --skip sampled > /tmp/memcheck.log 2>&1
echo "memcheck exit $?"; grep -E "ERROR SUMMARY|cases:" /tmp/memcheck.log
echo "== peers (same run, same card)"
$S bench --list-workloads > /tmp/workloads.json
STILE_COMMIT=${STILE_COMMIT:-unknown} PYTHONUNBUFFERED=1 python3 bench/peers/peers.py --workloads-json /tmp/workloads.json \
    --workload ${PEER_WORKLOADS:-hunyuan-720p} --impl cudnn,flex --out "$out/peers.json" 2>&1 | grep -v Deprecat
echo "== stile cuda"
$S bench --device cuda:0 --workload ${CUDA_WORKLOADS:-hunyuan-720p} --repeat 10 --warmup 3 --json "$out/cuda.json" \
    --compare "$out/peers.json" --check --check-rows 64
$S bench --device cuda:0 --canvas 30x48x80 --tile 6x8x8 --heads 24 --dtype bf16 --window 5x5x5 --head-dim 128 --no-full \
    --repeat 10 --warmup 3 --check --check-rows 32 --json "$out/cuda-window-5x5x5.json" | grep -E "STA|check"
$S bench --device cuda:0 --canvas 30x48x80 --tile 6x8x8 --heads 24 --dtype bf16 --window 3x3x3 --head-dim 64 --no-full \
    --repeat 10 --warmup 3 --check --check-rows 32 --json "$out/cuda-d64.json" | grep -E "STA|check"
# the chart is drawn afterwards from the records: stile chart peers.json cuda.json --out chart.svg
