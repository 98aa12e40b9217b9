#!/usr/bin/env bash
# On a GPU machine (the device tool; run `source .device/setup.sh` first): build stile, run the
# conformance suite on every device found, time the torch peers and stile's backends on the same
# workloads, and chart them. Everything lands in $OUT (default ./gpu-out), at most 8 files.
#   STILE_COMMIT=<commit> bash bench/gpu-run.sh
set -uo pipefail
source "$(dirname "$0")/gpu-common.sh"
nproc
$S info
echo "== conformance"
time $S conformance --json "$out/conformance.json" --markdown "$out/conformance.md" | tail -n 3
echo "== peers"
$S bench --list-workloads > /tmp/workloads.json
STILE_COMMIT=${STILE_COMMIT:-unknown} PYTHONUNBUFFERED=1 python3 bench/peers/peers.py --workloads-json /tmp/workloads.json \
    --out "$out/peers.json"
echo "== stile cpu backend on the same host"
$S bench --device cpu --workload ${CPU_WORKLOADS:-wan-480p,hunyuan-720p} --repeat 2 --warmup 1 --no-full \
    --json "$out/cpu.json" --compare "$out/peers.json"
echo "== chart"
$S chart "$out/peers.json" "$out/cpu.json" --out "$out/chart.svg" --markdown "$out/table.md"
cat "$out/table.md"
