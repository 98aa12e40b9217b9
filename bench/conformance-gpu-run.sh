#!/usr/bin/env bash
# Issue #10 on a GPU machine (the device tool; `source .device/setup.sh` first): the whole conformance
# table, the mask probes included (video-sized ones too), on cuda:0 and on vulkan:0 on both paths.
#   STILE_COMMIT=<commit> bash bench/conformance-gpu-run.sh        (results in $OUT, default ./gpu-out)
set -uo pipefail
source "$(dirname "$0")/gpu-common.sh" -Dvulkan=enabled -Dnvcc_archs=90
$S info
rc=0
echo "== cuda:0, every case"
$S conformance --device cuda:0 --json "$out/conformance-cuda.json" --markdown "$out/conformance-cuda.md" | grep -vE "^  pass" || rc=1
echo "== vulkan:0, tensor-core path, every case"
$S conformance --device vulkan:0 --json "$out/conformance-vulkan-coopmat.json" --markdown "$out/conformance-vulkan-coopmat.md" |
    grep -vE "^  pass" || rc=1
# The portable shader needs about a minute per HunyuanVideo-sized run: the sampled NMSE video cases are
# left out ("(sampled)"); the video-sized mask probes ("(sampled size)") run.
echo "== vulkan:0, portable path, every case but the sampled NMSE video cases"
STILE_VULKAN_PATH=portable $S conformance --device vulkan:0 --skip "(sampled)" --json "$out/conformance-vulkan-portable.json" \
    --markdown "$out/conformance-vulkan-portable.md" | grep -vE "^  pass" || rc=1
exit $rc
