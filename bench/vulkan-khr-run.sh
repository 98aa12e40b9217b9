#!/usr/bin/env bash
# Issue 14 on an NVIDIA GPU machine (the device tool; `source .device/setup.sh` first): build with the
# KHR cooperative-matrix shader (GLSLANG: a glslangValidator >= 13, default .glslang/ beside
# its libraries in .glslang/lib: Debian 12's is too old and the machine reaches no registry) and the NV
# cooperative-matrix-2 shader (GLSLANG_NV: glslang >= 15.1, default .glslang-nv/glslangValidator, e.g.
# ./run's build-tools/glslang-nv with only ld-linux, libc, libm, libstdc++ and libgcc_s kept), then
#   conf   conformance on vulkan:0 through the tensor-core shaders and the subgroup shader (cases
#          without sampling; CONF_PATHS to choose, SHARD=i/N for a part, CONF_S seconds each;
#          nv-coopmat2 is the default choice where it runs)
#   bench  HunyuanVideo 720p f16 on the tensor-core shaders (BENCH_PATHS="nv-coopmat2 khr-coopmat subgroup"
#          adds the shader devices without cooperative matrices take)
#   small  a smaller problem: the subgroup shader against the one-row-per-invocation one (and KHR)
#   cold   a first call on an empty pipeline cache, then a second process: stile's cache on disk,
#          with the driver's own shader cache off (__GL_SHADER_DISK_CACHE=0) to see stile's alone
#   validate  the conformance phase with the Khronos validation layer on (STILE_VULKAN_VALIDATION=1):
#          Debian 12's layer (1.3.239) does not know the KHR cooperative-matrix structures, so
#          LAYERS names a .tar.xz holding a newer one (layers/*.json, lib/ with the layer, a loader as new
#          as it (the 1.3.239 loader asks the layer for an instance function at device level, which it
#          reports), the glibc and libstdc++ it needs, lib/ld-linux-x86-64.so.2); stile runs under that
#          ld-linux. Debian trixie's vulkan-validationlayers, libvulkan1, libc6, libstdc++6 and
#          libgcc-s1 make one.
#   STILE_COMMIT=<commit> PHASES="conf bench cold" bash bench/vulkan-khr-run.sh   (results in $OUT)
set -uo pipefail
source "$(dirname "$0")/vulkan-common.sh"
$S info
W=${WORKLOAD:-hunyuan-720p}
rc=0
for phase in ${PHASES:-bench cold small conf}; do
    case $phase in
    conf)
        for p in ${CONF_PATHS:-nv-coopmat2 khr-coopmat subgroup}; do
            echo "== conformance on vulkan:0, $p, cases without sampling, shard ${SHARD:-0/1} [${SECONDS}s]"
            STILE_VULKAN_PATH=$p timeout ${CONF_S:-240} $S conformance --device vulkan:0 --skip sampled --shard ${SHARD:-0/1} \
                --json "$out/conformance-vulkan-$p.json" | grep -vE "^  pass" || rc=1
        done
        ;;
    validate)
        L=$(mktemp -d)
        tar -C "$L" -xJf "${LAYERS:-.trixie.tar.xz}" || { echo "no validation layer archive"; rc=1; continue; }
        for p in ${VALIDATE_PATHS:-nv-coopmat2 khr-coopmat subgroup portable}; do
            echo "== conformance on vulkan:0, $p, validation layer on, cases without sampling, shard ${SHARD:-0/1} [${SECONDS}s]"
            VK_LAYER_PATH=$L/layers STILE_VULKAN_VALIDATION=1 STILE_VULKAN_PATH=$p timeout ${CONF_S:-240} \
                "$L/lib/ld-linux-x86-64.so.2" --library-path "$L/lib:${LD_LIBRARY_PATH:-}" $S conformance --device vulkan:0 \
                --skip sampled --shard ${SHARD:-0/1} --json "$out/conformance-validated-vulkan-$p.json" | grep -vE "^  pass" || rc=1
        done
        ;;
    small)
        for p in subgroup portable khr-coopmat; do
            echo "== a smaller problem (6x24x40, 4 heads, f16) on vulkan:0, $p [${SECONDS}s]"
            STILE_VULKAN_PATH=$p timeout 120 $S bench --device vulkan:0 --canvas 6x24x40 --tile 6x8x8 --window 1x3x3 --heads 4 \
                --dtype f16 --no-full --repeat 5 --warmup 1 --check --json "$out/vulkan-small-$p.json" | grep -E "STA|check" || rc=1
        done
        ;;
    bench)
        for p in ${BENCH_PATHS:-nv-coopmat2 khr-coopmat}; do
            echo "== $W f16 on vulkan:0, $p [${SECONDS}s]"
            STILE_VULKAN_PATH=$p timeout 120 $S bench --device vulkan:0 --workload $W --dtype f16 --no-full --repeat 5 --warmup 2 \
                --check --check-rows 64 --json "$out/vulkan-$p.json" || rc=1
        done
        ;;
    cold)
        export STILE_CACHE_DIR=/tmp/stile-cache __GL_SHADER_DISK_CACHE=0
        rm -rf "$STILE_CACHE_DIR"
        for i in first second; do
            t0=$EPOCHREALTIME
            $S run --device vulkan:0 --canvas 12x16x16 --tile 6x8x8 --window 1x1x1 --heads 1 --dtype f16 --check | tail -1
            echo "cold start, $i process: $(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN {printf "%.2f", b - a}') s wall; cache: $(ls -la $STILE_CACHE_DIR 2>/dev/null | tail -n +4)"
        done
        ;;
    esac
done
echo "== done [${SECONDS}s]"
exit $rc
