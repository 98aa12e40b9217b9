#!/usr/bin/env bash
# Issue 11 (step 2) on a GPU machine (the device tool; `source .device/setup.sh` first): build with
# the sm_90a Hopper kernel, check its SASS, run the conformance suite on cuda:0 on the Hopper path
# (the default where eligible) and on the forced sm_80 path, and time HunyuanVideo 720p beside the
# torch peers in the same run. Pick the steps with STAGES (default: all of them, in this order):
#   sass smoke conf vk peers bench more mma memcheck racecheck synccheck
# (sanitizers: SANITIZER_JOBS processes at once, time limits RACECHECK_S and SANITIZER_S)
#   STAGES="sass conf bench" STILE_COMMIT=<commit> bash bench/sm90-run.sh      (results in $OUT)
set -uo pipefail
source "$(dirname "$0")/gpu-common.sh" -Dvulkan=enabled -Dhip=disabled -Dnvcc_archs=90
STAGES=" ${STAGES:-sass smoke conf vk peers bench more mma memcheck racecheck synccheck} "
has() { [[ "$STAGES" == *" $1 "* ]]; }
rc=0
cmp=""
if has sass; then
    echo "== SASS of the Hopper kernels (HGMMA count per function, spills)"
    cuobjdump -sass build-gpu/backends/cuda/sta_sm90_cuda.o > /tmp/sm90.sass
    awk '/Function :/ {f=$3} /HGMMA/ {h[f]++} /STL|LDL/ {l[f]++} END {for (k in h) print k, "HGMMA", h[k], "local", l[k]+0}' /tmp/sm90.sass
fi
if has smoke; then
    echo "== smoke: one small problem on the default path, checked"
    timeout 60 $S bench --device cuda:0 --canvas 12x16x24 --tile 6x8x8 --window 1x3x3 --heads 2 --text 40 --text-padding 3 \
        --dtype bf16 --no-full --repeat 1 --warmup 0 --check || { echo "smoke failed"; exit 1; }
fi
if has conf; then
    echo "== conformance on cuda:0 (Hopper path where eligible) [${SECONDS}s]"
    timeout 400 $S conformance --device cuda:0 --json "$out/conformance-cuda-sm90.json" --markdown "$out/conformance-cuda-sm90.md" |
        grep -vE "^  pass" || rc=1
fi
if has vk; then
    echo "== conformance on vulkan:0 (tensor-core shader), cases without sampling [${SECONDS}s]"
    timeout 300 $S conformance --device vulkan:0 --skip sampled --json "$out/conformance-vulkan-coopmat.json" | grep -vE "^  pass" || rc=1
fi
if has peers; then
    echo "== peers (same run, same card): hunyuan-720p, and the same with 256 text tokens [${SECONDS}s]"
    $S bench --list-workloads > /tmp/workloads.json
    python3 - <<'PY'
import json
w = json.load(open("/tmp/workloads.json"))
h = next(x for x in w if x["name"] == "hunyuan-720p")
t = json.loads(json.dumps(h))
t["name"], t["shape"]["text"], t["tokens"] = "hunyuan-720p-text256", 256, 115200 + 256
V, L, n = 115200, 256, 27 * 384  # every query tile attends 27 whole tiles (the canvas divides by the tile)
t["sta_flops"] = 4.0 * 128 * 24 * (V * (n + L) + L * (V + L))
t["dense_flops"] = 4.0 * 128 * 24 * (V + L) ** 2
t["about"] = "HunyuanVideo 720p with 256 text tokens (video queries: window + text; text queries: every key)"
w.append(t)
json.dump(w, open("/tmp/workloads.json", "w"))
PY
    STILE_COMMIT=${STILE_COMMIT:-unknown} PYTHONUNBUFFERED=1 timeout 300 python3 bench/peers/peers.py --workloads-json /tmp/workloads.json \
        --workload hunyuan-720p,hunyuan-720p-text256 --impl cudnn,flex --out "$out/peers.json" 2>&1 | grep -v Deprecat
fi
if has bench; then
    echo "== stile cuda, HunyuanVideo 720p bf16 (3x3x3, and full)"
    [ -f "$out/peers.json" ] && cmp="--compare $out/peers.json"
    timeout 200 $S bench --device cuda:0 --workload hunyuan-720p --dtype bf16 --repeat 10 --warmup 3 --check --check-rows 64 \
        --json "$out/cuda-sm90.json" $cmp || rc=1
fi
if has more; then
    echo "== stile cuda: 256 text tokens, window 5x5x5, head dim 64 (bf16, natural order)"
    timeout 120 $S bench --device cuda:0 --canvas 30x48x80 --tile 6x8x8 --heads 24 --dtype bf16 --window 3x3x3 --text 256 \
        --name hunyuan-720p-text256 --no-full --repeat 10 --warmup 3 --check --check-rows 32 --json "$out/cuda-sm90-text256.json" \
        $cmp || rc=1
    for extra in "--window 5x5x5" "--window 3x3x3 --head-dim 64"; do
        timeout 120 $S bench --device cuda:0 --canvas 30x48x80 --tile 6x8x8 --heads 24 --dtype bf16 $extra --no-full \
            --repeat 10 --warmup 3 --check --check-rows 32 | grep -E "STA|check" || rc=1
    done
fi
if has mma; then
    echo "== conformance on cuda:0, STILE_CUDA_PATH=mma (the sm_80 kernel) [${SECONDS}s]"
    STILE_CUDA_PATH=mma timeout 400 $S conformance --device cuda:0 --json "$out/conformance-cuda-mma.json" | grep -vE "^  pass" || rc=1
fi
# The sanitizers over the cases without sampling, in SANITIZER_JOBS processes at once (conformance
# --shard i/N each; default 4): most cases are small and leave the GPU idle under instrumentation.
jobs=${SANITIZER_JOBS:-4}
for tool in memcheck racecheck synccheck; do
    has $tool || continue
    echo "== compute-sanitizer $tool over the cases without sampling ($jobs processes) [${SECONDS}s]"
    case $tool in racecheck) lim=${RACECHECK_S:-240} ;; *) lim=${SANITIZER_S:-150} ;; esac
    pids=()
    for ((i = 0; i < jobs; i++)); do
        timeout $lim stdbuf -oL compute-sanitizer --tool $tool --error-exitcode 9 $S conformance --device cuda:0 --skip sampled \
            --shard $i/$jobs > /tmp/$tool.$i.log 2>&1 &
        pids+=($!)
    done
    for ((i = 0; i < jobs; i++)); do
        wait ${pids[$i]}
        e=$?
        [ $e -eq 0 ] || rc=1
        echo "$tool shard $i/$jobs exit $e"; grep -E "ERROR SUMMARY|RACECHECK SUMMARY|cases" /tmp/$tool.$i.log
        [ $e -eq 124 ] && echo "  cases done: $(grep -cE '^  (pass|fail)' /tmp/$tool.$i.log); last: $(grep -E '^  ' /tmp/$tool.$i.log | tail -1)"
        head -c 3000 /tmp/$tool.$i.log >> "$out/sanitizer.log"
    done
done
echo "== done [${SECONDS}s]"
exit $rc
