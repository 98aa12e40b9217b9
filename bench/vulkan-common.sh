# Sourced by the Vulkan run scripts (bench/vulkan-khr-run.sh, key-tiles-vulkan-run.sh): the build in
# build-gpu with Vulkan alone, its shaders compiled by the glslang that knows the cooperative-matrix
# extensions (GLSLANG, default .glslang/glslangValidator with its lib/ beside it; GLSLANG_NV for the
# cooperative-matrix-2 shader, default .glslang-nv/glslangValidator, skipped when absent); then
# gpu-common.sh (sets out and S).
G=${GLSLANG:-$PWD/.glslang/glslangValidator}
export LD_LIBRARY_PATH=$(dirname "$G")/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
GN=${GLSLANG_NV:-$PWD/.glslang-nv/glslangValidator}
nv=()
[ -x "$GN" ] && nv=(-Dglslang_nv="$GN")
source "$(dirname "${BASH_SOURCE[0]}")/gpu-common.sh" -Dvulkan=enabled -Dcuda=disabled -Dhip=disabled -Dtests=false -Dglslang="$G" "${nv[@]}"
