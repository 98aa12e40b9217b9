#!/usr/bin/env bash
# Issue 16 on a GPU machine (the device tool; `source .device/setup.sh` first): caller-chosen key tiles
# on cuda:0 - their conformance cases on each path (wgmma+tma, mma.sync, portable), the rest of the
# table for regressions, memcheck on the small key-tile cases, and Wan 2.1 1.3B 480p at tile 4x4x4 and
# 87.5% sparsity: stile's STA (window 3x2x13 = 78 of 624 tiles) beside the same window's tiles given as
# caller-chosen lists (--sparsity window:3x2x13: the same FLOPs), 78 random caller-chosen tiles
# (--sparsity topk:78) and FlexAttention with those lists (bench/peers/flex_topk.py); HunyuanVideo
# 720p for the wide Hopper shape.
#   STILE_COMMIT=<commit> bash bench/key-tiles-run.sh        (results in $OUT, default ./gpu-out)
set -uo pipefail
source "$(dirname "$0")/gpu-common.sh" -Dvulkan=disabled -Dhip=disabled -Dtests=false -Dnvcc_archs=90
W="--canvas 21x30x52 --tile 4x4x4 --heads 12 --dtype bf16 --head-dim 128 --repeat 10 --warmup 3"
for path in hopper mma; do
    echo "== Wan 480p 4x4x4 87.5%, STILE_CUDA_PATH=$path"
    STILE_CUDA_PATH=$path $S bench --device cuda:0 $W --window 3x2x13 --name wan-480p-4x4x4-w3x2x13 --json "$out/wan-sta-$path.json" |
        grep -E "full|STA"
    STILE_CUDA_PATH=$path $S bench --device cuda:0 $W --sparsity window:3x2x13 --no-full --name wan-480p-4x4x4-lists3x2x13 \
        --json "$out/wan-lists-$path.json" | grep -E "STA"
    STILE_CUDA_PATH=$path $S bench --device cuda:0 $W --sparsity topk:78 --no-full --name wan-480p-4x4x4-topk78 \
        --json "$out/wan-topk-$path.json" | grep -E "STA"
done
echo "== HunyuanVideo 720p, window 3x3x3"
$S bench --device cuda:0 --canvas 30x48x80 --tile 6x8x8 --heads 24 --dtype bf16 --head-dim 128 --window 3x3x3 --repeat 5 \
    --warmup 2 --no-full --name hunyuan-720p --json "$out/hunyuan.json" | grep -E "STA"
echo "== FlexAttention, the same lists (padded to whole tiles)"
PYTHONUNBUFFERED=1 python3 bench/peers/flex_topk.py --canvas 21x30x52 --tile 4x4x4 --heads 12 --topk 78 --out "$out/flex-topk78.json" 2>&1 |
    grep -v Deprecat
for path in hopper mma portable; do
    echo "== conformance on cuda:0, key tiles, STILE_CUDA_PATH=$path"
    STILE_CUDA_PATH=$path timeout 120 $S conformance --device cuda:0 --case "key tiles" --json "$out/conformance-cuda-key-tiles-$path.json" |
        grep -vE "^  pass"
done
echo "== conformance on cuda:0, the rest of the table"
timeout 200 $S conformance --device cuda:0 --skip "key tiles" --json "$out/conformance-cuda.json" | grep -vE "^  pass"
echo "== compute-sanitizer memcheck, key tiles without sampling"
timeout 120 compute-sanitizer --tool memcheck --error-exitcode 9 $S conformance --device cuda:0 --case "key tiles" --skip sampled > /tmp/memcheck.log 2>&1
echo "memcheck exit $?"; grep -E "ERROR SUMMARY|cases:" /tmp/memcheck.log
