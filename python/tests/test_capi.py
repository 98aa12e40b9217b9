"""The ctypes mirrors in stile/_capi.py against the C header: a C program compiled against
stile/stile.h prints every mirrored structure's size and each field's offset."""

import ctypes
import os
import pathlib
import shutil
import subprocess

import pytest

from stile import _capi as C

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _include_flags():
    """-I for stile.h and the generated stile_version.h: STILE_CFLAGS, else the source tree beside
    the build directory the loaded library comes from, else pkg-config."""
    if os.environ.get("STILE_CFLAGS"):
        return os.environ["STILE_CFLAGS"].split()
    lib_dir = pathlib.Path(C.library_path).resolve().parent
    if (ROOT / "include" / "stile" / "stile.h").exists() and (lib_dir / "stile_version.h").exists():
        return [f"-I{ROOT / 'include'}", f"-I{lib_dir}"]
    try:
        return subprocess.run(["pkg-config", "--cflags", "stile"], check=True, capture_output=True, text=True).stdout.split()
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("no stile headers found: set STILE_CFLAGS to -I flags for stile/stile.h")


def test_mirrors_match_the_header(tmp_path):
    cc = shutil.which(os.environ.get("CC", "cc"))
    if not cc:
        pytest.skip("no C compiler to compare the mirrors with the header")
    lines = ["#include <stdio.h>", "#include <stddef.h>", "#include <stile/stile.h>", "#include <stile/stile_vsa.h>",
             "int main(void) {"]
    expected = []
    for cname, mirror in C.MIRRORS.items():
        lines.append(f'printf("{cname} %zu\\n", sizeof({cname}));')
        expected.append(f"{cname} {ctypes.sizeof(mirror)}")
        for fname, _ in mirror._fields_:
            lines.append(f'printf("{cname}.{fname} %zu\\n", offsetof({cname}, {fname}));')
            expected.append(f"{cname}.{fname} {getattr(mirror, fname).offset}")
    lines += ["return 0;", "}"]
    src = tmp_path / "mirrors.c"
    src.write_text("\n".join(lines) + "\n")
    exe = tmp_path / "mirrors"
    lib = pathlib.Path(C.library_path).resolve()  # the header refers to stile_api_<N>: link the library loaded
    subprocess.run([cc, "-std=c11", *_include_flags(), str(src), "-o", str(exe), str(lib), f"-Wl,-rpath,{lib.parent}"], check=True)
    got = subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout.split("\n")
    assert [g for g in got if g] == expected


def test_api_version_matches_the_header():
    text = (ROOT / "include" / "stile" / "stile.h").read_text() if (ROOT / "include").exists() else None
    if text is None:
        pytest.skip("no source tree here")
    assert f"#define STILE_API_VERSION {C.API_VERSION}" in text


def test_enums_match_the_header():
    """Every status, dtype and order value the package names, against the header's explicit values."""
    header = ROOT / "include" / "stile" / "stile.h"
    if not header.exists():
        pytest.skip("no source tree here")
    text = header.read_text()
    import re

    values = {m.group(1): int(m.group(2)) for m in re.finditer(r"\bSTILE_([A-Z0-9_]+)\s*=\s*(-?\d+)", text)}
    for name in dir(C):
        if name.startswith(("ERR_", "DTYPE_", "ORDER_", "LOG_")) and name.isupper():
            assert values.get(name) == getattr(C, name), name
    assert values["OK"] == C.OK
