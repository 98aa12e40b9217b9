#!/usr/bin/env bash
# Issue #15 on a GPU machine (the device tool; `source .device/setup.sh` first): the backward cases of
# the conformance table on cuda:0 on each backward path (wgmma on Hopper, mma.sync, portable),
# compute-sanitizer over them, and HunyuanVideo 720p bf16 backward beside FlexAttention-STA's and the
# dense peers' in one run.
#   STILE_COMMIT=<commit> bash bench/cuda-backward-run.sh        (results in $OUT, default ./gpu-out)
# PHASES (default "conf sanitize bench") picks the parts, PATHS the STILE_CUDA_PATH values, SANITIZE_TOOLS
# the compute-sanitizer tools.
set -uo pipefail
source "$(dirname "$0")/gpu-common.sh" -Dvulkan=disabled -Dhip=disabled -Dtests=false -Dnvcc_archs=90
phases=${PHASES:-conf sanitize bench}
rc=0
if [[ $phases == *conf* ]]; then
    for path in ${PATHS:-hopper mma portable}; do
        echo "== cuda:0 backward cases, STILE_CUDA_PATH=$path"
        STILE_CUDA_PATH=$path $S conformance --device cuda:0 --case backward --json "$out/conformance-cuda-backward-$path.json" |
            grep -vE "^  pass" || rc=1
    done
fi
if [[ $phases == *sanitize* ]]; then
    for tool in ${SANITIZE_TOOLS:-memcheck racecheck synccheck initcheck}; do
        for path in ${PATHS:-hopper mma portable}; do
            STILE_CUDA_PATH=$path timeout 900 compute-sanitizer --tool $tool --error-exitcode 9 $S conformance --device cuda:0 \
                --case "${SANITIZE_CASES:-backward}" > "$out/$tool-$path.log" 2>&1
            echo "$tool ($path): exit $? $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$out/$tool-$path.log" | tail -1)"
        done
    done
fi
if [[ $phases == *bench* ]]; then
    echo "== peers (same run, same card)"
    $S bench --list-workloads > /tmp/workloads.json
    STILE_COMMIT=${STILE_COMMIT:-unknown} PYTHONUNBUFFERED=1 python3 bench/peers/peers.py --workloads-json /tmp/workloads.json \
        --workload hunyuan-720p --impl cudnn,flex --backward --out "$out/peers-backward.json" 2>&1 | grep -v Deprecat
    echo "== stile cuda, forward and backward"
    $S bench --device cuda:0 --workload hunyuan-720p --no-full --backward --repeat ${REPEAT:-5} --warmup 2 \
        --json "$out/cuda-backward.json" --compare "$out/peers-backward.json"
fi
exit $rc
