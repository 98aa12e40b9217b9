#!/usr/bin/env bash
# Issue 17 on a GPU host (the device tool; `source .device/setup.sh` first): the distributed cases with
# 2 and 3 ranks as threads on cuda:0 on every kernel path (tests/test_dist_threads.c), the CUDA
# conformance table on cuda:0 (the region changes touch every forward kernel); then, with two or more
# GPUs (nvidia-h200-x2), the cases over NCCL (tests/test_dist_nccl.c) and HunyuanVideo 720p window
# 3x3x3 over the ranks in halo and head modes beside one device in the same run.
#   STILE_COMMIT=<commit> bash bench/dist-run.sh [RANKS]   (results in $OUT; ONLY_RANKS=1 leaves out the one-GPU part)
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-gpu-out}
ranks=${1:-2}
mkdir -p "$out"
exec > >(tee -a "$out/run.log") 2>&1
# NVLink multicast stays off on these machines (the device tool's KINDS.md)
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
# NCCL: the toolkit's, else the PyPI wheel's that torch loads
nr=/usr/local/cuda
if [ ! -f $nr/include/nccl.h ]; then
    w=$(python3 -c "import nvidia.nccl as m; print(list(m.__path__)[0])")
    mkdir -p /tmp/nccl/lib
    ln -sfn "$w/include" /tmp/nccl/include
    ln -sf "$w/lib/libnccl.so.2" /tmp/nccl/lib/libnccl.so
    ln -sf "$w/lib/libnccl.so.2" /tmp/nccl/lib/libnccl.so.2
    nr=/tmp/nccl
fi
echo "NCCL from $nr"
export LD_LIBRARY_PATH=$nr/lib:$nr/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
[ -f build-dist/build.ninja ] || meson setup build-dist -Dvulkan=disabled -Dhip=disabled -Dmpi=disabled -Dnvcc_archs=90 \
    -Dnccl_root=$nr -Dcommit="${STILE_COMMIT:-}" >/dev/null
ninja -C build-dist | grep -E "warning|error|FAILED"
S=build-dist/tools/stile
export STILE_BACKEND_PATH=$PWD/build-dist
[ -n "${ONLY_RANKS:-}" ] || for p in hopper mma portable; do
    for n in 2 3; do
        echo "== test_dist_threads cuda:0 $n ranks, STILE_CUDA_PATH=$p [${SECONDS}s]"
        STILE_CUDA_PATH=$p timeout 300 build-dist/tests/test_dist_threads cuda:0 $n | grep -v ": ok$"
    done
done
if [ -z "${ONLY_RANKS:-}" ]; then
    echo "== conformance on cuda:0 without sampling [${SECONDS}s]"
    timeout 300 $S conformance --device cuda:0 --skip sampled --json "$out/conformance-cuda.json" | grep -vE "^  pass"
    echo "== HunyuanVideo 720p on cuda:0 (against the 23.0 ms before regions) [${SECONDS}s]"
    $S bench --device cuda:0 --workload hunyuan-720p --no-full --repeat 10 --warmup 3 --json "$out/hunyuan-720p-cuda.json" | grep -E "STA|device"
fi
[ "$(nvidia-smi -L | wc -l)" -ge "$ranks" ] || { echo "== $(nvidia-smi -L | wc -l) GPU(s): the NCCL part needs $ranks [${SECONDS}s]"; exit 0; }
for p in hopper mma portable; do
    echo "== test_dist_nccl $ranks ranks, STILE_CUDA_PATH=$p [${SECONDS}s]"
    STILE_CUDA_PATH=$p timeout 300 build-dist/tests/test_dist_nccl "$ranks" | grep -v ": ok$"
done
echo "== HunyuanVideo 720p over $ranks ranks [${SECONDS}s]"
timeout 300 $S bench --ranks "$ranks" --device cuda --workload hunyuan-720p --repeat 10 --warmup 3 --json "$out/dist-hunyuan-720p.json"
echo "== the same with 256 text tokens [${SECONDS}s]"
timeout 300 $S bench --ranks "$ranks" --device cuda --canvas 30x48x80 --tile 6x8x8 --window 3x3x3 --heads 24 --head-dim 128 \
    --dtype bf16 --text 256 --name hunyuan-720p-text256 --repeat 10 --warmup 3 --json "$out/dist-hunyuan-720p-text256.json"
echo "== done [${SECONDS}s]"
