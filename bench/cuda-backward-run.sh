#!/usr/bin/env bash
# Issue #15 on a GPU machine (the device tool; `source .device/setup.sh` first): the backward cases of
# the conformance table on cuda:0 on each backward path (wgmma on Hopper, mma.sync, portable), the
# forward cases on the paths the backward's shared code touches, compute-sanitizer over the backward
# cases, and HunyuanVideo 720p bf16 backward beside FlexAttention-STA's and the dense peers' in one run.
#   STILE_COMMIT=<commit> bash bench/cuda-backward-run.sh        (results in $OUT, default ./gpu-out)
# PHASES (default "conf sanitize bench") picks the parts, PATHS the STILE_CUDA_PATH values, SANITIZE the
# "tool:path" pairs (SANITIZE_TIMEOUT seconds each; racecheck only on RACECHECK_CASES). Checks run side by
# side (the host oracle dominates them); the timing runs alone. The device tool returns at most 8 files of
# its $OUT: run with OUT=/tmp/run and tar that folder into $OUT.
set -uo pipefail
source "$(dirname "$0")/gpu-common.sh" -Dvulkan=disabled -Dhip=disabled -Dtests=false -Dnvcc_archs=90
phases=${PHASES:-conf sanitize bench}
rc=0
pids=()
if [[ $phases == *conf* ]]; then
    for path in ${PATHS:-hopper mma portable}; do
        STILE_CUDA_PATH=$path $S conformance --device cuda:0 --case backward --json "$out/conformance-cuda-backward-$path.json" \
            > "$out/conformance-backward-$path.log" 2>&1 & pids+=($!)
    done
    # the forward cases on the kernels whose shared headers the backward changed (mma.sync, portable)
    STILE_CUDA_PATH=mma $S conformance --device cuda:0 --skip backward --json "$out/conformance-cuda-forward-mma.json" \
        > "$out/conformance-forward-mma.log" 2>&1 & pids+=($!)
    STILE_CUDA_PATH=portable $S conformance --device cuda:0 --skip "(sampled)" \
        --json "$out/conformance-cuda-portable.json" > "$out/conformance-portable.log" 2>&1 & pids+=($!) # (one --skip: backward cases too)
fi
if [[ $phases == *sanitize* ]]; then
    for pair in ${SANITIZE:-memcheck:hopper racecheck:hopper synccheck:hopper initcheck:hopper memcheck:mma racecheck:mma memcheck:portable}; do
        tool=${pair%%:*} path=${pair##*:} cases=backward
        # racecheck runs these kernels hundreds of times slower: one small case, both head dims
        [ "$tool" = racecheck ] && cases=${RACECHECK_CASES:-w3x1x3, bf16}
        STILE_CUDA_PATH=$path timeout ${SANITIZE_TIMEOUT:-900} compute-sanitizer --tool $tool --error-exitcode 9 $S conformance --device cuda:0 \
            --case "$cases" > "$out/$tool-$path.log" 2>&1 & pids+=($!)
    done
fi
for pid in "${pids[@]}"; do wait "$pid" || rc=1; done
for f in "$out"/conformance-*.log; do
    [ -f "$f" ] && { echo "== $(basename "$f")"; grep -vE "^  pass" "$f" | tail -4; }
done
for f in "$out"/*check-*.log; do
    [ -f "$f" ] && echo "$(basename "$f" .log): $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY|cases:' "$f" | tr '\n' ' ')"
done
if [[ $phases == *bench* ]]; then
    echo "== peers (same run, same card)"
    $S bench --list-workloads > /tmp/workloads.json
    STILE_COMMIT=${STILE_COMMIT:-unknown} PYTHONUNBUFFERED=1 python3 bench/peers/peers.py --workloads-json /tmp/workloads.json \
        --workload hunyuan-720p --impl cudnn,flex --backward --out "$out/peers-backward.json" 2>&1 | grep -E "^\[|peers:"
    echo "== stile cuda, forward and backward, each backward path"
    for path in ${PATHS:-hopper mma portable}; do
        [ "$path" = portable ] && continue # minutes per run at this size
        STILE_CUDA_PATH=$path $S bench --device cuda:0 --workload hunyuan-720p --no-full --backward --repeat ${REPEAT:-5} --warmup 2 \
            --json "$out/cuda-backward-$path.json" --compare "$out/peers-backward.json" | grep -E "STA|backward|flex-sta"
    done
fi
exit $rc
