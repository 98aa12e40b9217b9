#!/usr/bin/env bash
# Issue 16 on Vulkan on a GPU machine (the device tool; `source .device/setup.sh` first, carry .glslang
# and .glslang-nv as bench/vulkan-khr-run.sh says; under the 64 MiB carry limit GLSLANG=$PWD/.glslang-nv/glslangValidator
# serves both): the key-tile conformance cases on every Vulkan path
# (nv-coopmat2, khr-coopmat, subgroup, portable), then the rest of the table without sampling on the
# default path for regressions.   STILE_COMMIT=<commit> bash bench/key-tiles-vulkan-run.sh   (results in $OUT)
set -uo pipefail
source "$(dirname "$0")/vulkan-common.sh"
$S info | grep -i vulkan
for p in nv-coopmat2 khr-coopmat subgroup portable; do
    echo "== conformance on vulkan:0, key tiles, $p [${SECONDS}s]"
    STILE_VULKAN_PATH=$p timeout 150 $S conformance --device vulkan:0 --case "key tiles" --json "$out/conformance-vulkan-key-tiles-$p.json" |
        grep -vE "^  pass"
done
echo "== conformance on vulkan:0, the rest of the table without sampling [${SECONDS}s]"
timeout 200 $S conformance --device vulkan:0 --skip sampled --json "$out/conformance-vulkan.json" | grep -vE "^  pass|key tiles"
