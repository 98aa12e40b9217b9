# Sourced by the GPU run scripts (bench/gpu-run.sh, cuda-run.sh, vulkan-run.sh): output folder and
# log, the card, and the build in build-gpu (extra meson options for a first setup: "$@").
# Sets out (the results folder, $OUT or ./gpu-out) and S (the stile CLI).
cd "$(dirname "${BASH_SOURCE[0]}")/.."
out=${OUT:-gpu-out}
mkdir -p "$out"
exec > >(tee -a "$out/run.log") 2>&1
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader
if [ -f build-gpu/build.ninja ]; then
    meson configure build-gpu -Dwerror=false -Dcommit="${STILE_COMMIT:-}" >/dev/null
else
    meson setup build-gpu -Dcommit="${STILE_COMMIT:-}" "$@" >/dev/null
fi
ninja -C build-gpu | grep -E "warning|error|FAILED"
S=build-gpu/tools/stile
[ -x $S ] || { echo "build failed"; exit 1; }
$S --version
