#!/usr/bin/env python3
"""Build step for the shaders glslc cannot compile (backends/vulkan/meson.build): the KHR
cooperative-matrix shader (glslangValidator >= 13) and the NV cooperative-matrix-2 one (>= 15.1).
Compile with that glslangValidator, optimize with SPIRV_OPT (-O, as glslc -O does for the other
shaders) unless it is "-", and write the SPIR-V words as a C array named NAME.

    khr_spv.py GLSLANG SPIRV_OPT|- NAME OUT.h -- GLSLANG_ARGS... INPUT"""
import os
import subprocess
import sys
import tempfile


def main():
    glslang, spirv_opt, name, out = sys.argv[1:5]
    args = sys.argv[sys.argv.index("--") + 1:]
    with tempfile.TemporaryDirectory() as d:
        spv = os.path.join(d, "a.spv")
        subprocess.run([glslang, "-V", *args, "-o", spv], check=True, stdout=subprocess.DEVNULL)
        if spirv_opt != "-":
            opt = os.path.join(d, "b.spv")
            subprocess.run([spirv_opt, "-O", "--target-env=vulkan1.2", spv, "-o", opt], check=True)
            spv = opt
        data = open(spv, "rb").read()
    words = [int.from_bytes(data[i:i + 4], "little") for i in range(0, len(data), 4)]
    lines = [",".join(f"0x{w:08x}" for w in words[i:i + 8]) for i in range(0, len(words), 8)]
    with open(out + ".tmp", "w") as f:
        f.write(f"static const uint32_t {name}[] = {{\n" + ",\n".join(lines) + "\n};\n")
    os.replace(out + ".tmp", out)


if __name__ == "__main__":
    main()
