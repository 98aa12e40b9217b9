#!/usr/bin/env bash
# Issue #5 on a GPU machine (the device tool; `source .device/setup.sh` first): build with Vulkan (and
# CUDA for the comparison), then per phase:
#   smoke  the tensor-core path on the cases without sampling
#   conf   the conformance suite on vulkan:0 on both paths (tensor-core, then STILE_VULKAN_PATH=portable
#          without the sampled video cases), and the non-sampled cases again with the validation layer on
#   bench  HunyuanVideo 720p f16 in one run: the torch peers, stile vulkan (the portable path too with
#          BENCH_PORTABLE=1: about a minute per run), stile cuda
#   STILE_COMMIT=<commit> PHASES="conf bench" bash bench/vulkan-run.sh   (results in $OUT, default ./gpu-out)
set -uo pipefail
source "$(dirname "$0")/gpu-common.sh" -Dvulkan=enabled -Dnvcc_archs=90
$S info
PHASES=${PHASES:-conf bench}
W=${WORKLOAD:-hunyuan-720p}
for phase in $PHASES; do
    case $phase in
    conf)
        echo "== conformance on vulkan:0, tensor-core path"
        $S conformance --device vulkan:0 --json "$out/conformance-vulkan-coopmat.json" --markdown "$out/conformance-vulkan-coopmat.md" | grep -vE "^  pass"
        # the portable shader needs about a minute per HunyuanVideo-sized run: its sampled video cases
        # are left to `bench --check` below (BENCH_PORTABLE=1)
        echo "== conformance on vulkan:0, portable path, cases without sampling"
        STILE_VULKAN_PATH=portable $S conformance --device vulkan:0 --skip sampled --json "$out/conformance-vulkan-portable.json" \
            --markdown "$out/conformance-vulkan-portable.md" | grep -vE "^  pass"
        echo "== validation layer on, tensor-core path, cases without sampling"
        STILE_VULKAN_VALIDATION=1 $S conformance --device vulkan:0 --skip sampled 2>&1 | grep -vE "^  pass" | head -20
        ;;
    smoke)
        echo "== smoke: tensor-core path, cases without sampling"
        $S conformance --device vulkan:0 --skip sampled 2>&1 | grep -vE "^  pass" | head -40
        ;;
    bench)
        echo "== peers (same run, same card)"
        $S bench --list-workloads > /tmp/workloads.json
        STILE_COMMIT=${STILE_COMMIT:-unknown} PYTHONUNBUFFERED=1 python3 bench/peers/peers.py --workloads-json /tmp/workloads.json \
            --workload $W --dtype f16 --impl cudnn,flex --out "$out/peers-f16.json" 2>&1 | grep -v Deprecat
        echo "== stile vulkan, tensor-core path"
        $S bench --device vulkan:0 --workload $W --dtype f16 --no-full --repeat 10 --warmup 3 --check --check-rows 64 \
            --json "$out/vulkan-coopmat.json" --compare "$out/peers-f16.json"
        [ "${BENCH_PORTABLE:-0}" = 1 ] && echo "== stile vulkan, portable path" &&
        STILE_VULKAN_PATH=portable $S bench --device vulkan:0 --workload $W --dtype f16 --no-full --repeat 3 --warmup 1 \
            --check --check-rows 64 --json "$out/vulkan-portable.json"
        echo "== stile cuda"
        $S bench --device cuda:0 --workload $W --dtype f16 --no-full --repeat 10 --warmup 3 --check --check-rows 64 \
            --json "$out/cuda-f16.json"
        ;;
    esac
done
