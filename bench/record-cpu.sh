#!/usr/bin/env bash
# Record the CPU benchmarks of issue #2 under bench/results/ (run from the repository root after
# `./run test` or `meson setup build && ninja -C build`, on a clean commit so the record names it).
set -euo pipefail
cd "$(dirname "$0")/.."
day=$(date -u +%Y-%m-%d)
host=cpu-$(nproc)t
# STA vs full attention on the CPU backend (workload cpu-small: 18x32x48, tile 6x8x8, window 3x3x3,
# 2 heads, d 128, f32), with the CBLAS sgemm 2048^3 reference in the same run.
build/tools/stile bench --device cpu --workload cpu-small --repeat 5 --warmup 1 --check \
    --json "bench/results/$day-$host-stile-cpu-small.json"
# Planning HunyuanVideo 720p with 24 distinct windows and 256 text tokens.
windows=1x1x1,2x1x8,3x1x5,4x1x2,5x1x9,1x2x6,2x2x3,3x2x10,4x2x7,5x2x4,1x3x1,2x3x8,3x3x5,4x3x2,5x3x9,1x4x6,2x4x3,3x4x10,4x4x7,5x4x4,1x5x1,2x5x8,3x5x5,4x5x2
build/tools/stile bench --device cpu --plan-only --canvas 30x48x80 --tile 6x8x8 --window "$windows" --heads 24 \
    --head-dim 128 --text 256 --dtype bf16 --json "bench/results/$day-$host-stile-plan-hunyuan-720p-24-windows.json"
bench/update-readme.sh
