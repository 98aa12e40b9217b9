#!/usr/bin/env bash
# Issue 13 on a CUDA GPU machine (the device tool; `source .device/setup.sh` first): build, run the
# Python package's tests there (torch CUDA, CuPy and JAX where present), the HunyuanVideo example,
# then bench/python_attention.py (stile.attention against FlexAttention-STA and `stile bench`, in one
# process). Results in $OUT:   STILE_COMMIT=<commit> bash bench/python-run.sh
set -uo pipefail
source "$(dirname "$0")/gpu-common.sh" -Dvulkan=disabled -Dhip=disabled -Dnvcc_archs=90 -Dtests=false
export STILE_LIBRARY=$PWD/build-gpu/libstile.so PYTHONPATH=$PWD/python PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
rc=0
echo "== python tests [${SECONDS}s]"
(cd python/tests && STILE_EXE=$OLDPWD/build-gpu/tools/stile STILE_CFLAGS="-I$OLDPWD/include -I$OLDPWD/build-gpu" \
    timeout 300 python3 -m pytest -q -rs -p no:cacheprovider) || rc=1
echo "== examples/hunyuan_attention.py (720p, bf16) [${SECONDS}s]"
timeout 120 python3 examples/hunyuan_attention.py || rc=1
echo "== stile.attention against FlexAttention-STA and stile bench [${SECONDS}s]"
STILE_COMMIT=${STILE_COMMIT:-unknown} timeout 400 python3 bench/python_attention.py --stile build-gpu/tools/stile \
    --workload hunyuan-720p --out "$out/python-attention.json" 2>&1 | grep -v Deprecat || rc=1
echo "== done [${SECONDS}s]"
exit $rc
