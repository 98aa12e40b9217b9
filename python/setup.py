"""The wheel carries the C library: libstile.so.1 and its backend modules (libstile-<name>.so), copied
from a meson build directory into stile/_libs, where the package loads them and where libstile looks
for its modules (beside itself). STILE_BUILD_DIR names the build directory (default: ../build); with
no library there the package is pure Python and loads a system libstile.so.1 (python/README.md)."""

import os
import pathlib
import shutil

from setuptools import Distribution, setup
from setuptools.command.build_py import build_py

HERE = pathlib.Path(__file__).resolve().parent


def _build_dir():
    d = os.environ.get("STILE_BUILD_DIR")
    return pathlib.Path(d).resolve() if d else HERE.parent / "build"


class BuildWithLibrary(build_py):
    def run(self):
        super().run()
        src = _build_dir()
        lib = src / "libstile.so.1"
        if not lib.exists():
            if os.environ.get("STILE_BUILD_DIR"):
                raise SystemExit(f"STILE_BUILD_DIR={src}: no libstile.so.1 there (build the C library first)")
            print(f"stile: no libstile.so.1 in {src}; the package will load the system's")
            return
        dst = pathlib.Path(self.build_lib) / "stile" / "_libs"
        shutil.rmtree(dst, ignore_errors=True)
        dst.mkdir(parents=True)
        shutil.copyfile(lib.resolve(), dst / "libstile.so.1")
        for module in sorted(src.glob("libstile-*.so")):
            shutil.copyfile(module, dst / module.name)
        for f in dst.iterdir():
            f.chmod(0o755)
        print(f"stile: bundled {', '.join(sorted(p.name for p in dst.iterdir()))} from {src}")


class BinaryDistribution(Distribution):
    """A wheel tagged for this platform: it holds shared libraries."""

    def has_ext_modules(self):
        return True


setup(cmdclass={"build_py": BuildWithLibrary}, distclass=BinaryDistribution)
