#!/bin/sh
# libstile's ABI against the baseline in abi/libstile.abi (libabigail's abidw/abidiff; Debian:
# abigail-tools). The library must be built with debug info (the default build is).
#   abi/abi.sh check BUILD_DIR    fails on any change other than added functions or variables
#   abi/abi.sh update BUILD_DIR   writes the baseline from the library as built (commit it on purpose)
#   abi/abi.sh force BUILD_DIR    the same without the soname rule: only for a change made while the
#                                 soversion already bumped for it has not been released yet
# A change that is not an addition needs the baseline regenerated in the same commit; an incompatible
# one (a function removed or its types changed, a structure resized) also needs stile_soversion
# bumped in meson.build: update refuses to write a baseline with the same soname as the last one
# when abidiff calls the change incompatible or a size changed.
set -u
cmd=${1:-} build=${2:-}
here=$(cd "$(dirname "$0")" && pwd)
src=$(dirname "$here")
base=$here/libstile.abi
lib=$build/libstile.so
[ -n "$build" ] && [ -f "$lib" ] || { echo "usage: abi/abi.sh check|update BUILD_DIR (with BUILD_DIR/libstile.so)" >&2; exit 2; }
if ! command -v abidiff >/dev/null; then
    echo "SKIP: abidiff is not installed (apt-get install abigail-tools; ./run test installs it)"
    exit 77
fi
headers="--headers-dir2 $src/include/stile --headers-dir2 $build"
report=$(mktemp)
trap 'rm -f "$report"' EXIT
abidiff $headers "$base" "$lib" >"$report" 2>&1
rc=$?
# counts of the summary lines: "Functions changes summary: R Removed, C Changed (...), A Added functions"
removed=$(sed -n 's/.*summary: \([0-9]*\) Removed.*/\1/p' "$report" | awk '{s += $1} END {print s + 0}')
changed=$(sed -n 's/.*Removed, \([0-9]*\) Changed.*/\1/p' "$report" | awk '{s += $1} END {print s + 0}')
case "$cmd" in
check)
    cat "$report"
    if [ $((rc & 1)) -ne 0 ]; then echo "abidiff failed to run (status $rc)"; exit 1; fi
    if [ $((rc & 8)) -ne 0 ] || [ "$removed" -gt 0 ] || [ "$changed" -gt 0 ]; then
        echo "ABI changed against abi/libstile.abi ($removed removed, $changed changed; abidiff status $rc)."
        echo "If it is on purpose: bump stile_soversion in meson.build when it is incompatible, then abi/abi.sh update BUILD_DIR."
        exit 1
    fi
    echo "ABI: no change against abi/libstile.abi but additions (abidiff status $rc)"
    exit 0
    ;;
update | force)
    old=$(sed -n "s/.*soname='\([^']*\)'.*/\1/p" "$base" 2>/dev/null | head -n 1)
    new=$(readelf -d "$lib" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
    if [ "$cmd" = update ] && [ -f "$base" ] && [ "$old" = "$new" ] && { [ $((rc & 8)) -ne 0 ] || grep -q 'size changed' "$report"; }; then
        cat "$report"
        echo "refused: an incompatible change with the same soname ($new): bump stile_soversion in meson.build first"
        exit 1
    fi
    abidw --headers-dir "$src/include/stile" --headers-dir "$build" --drop-private-types --no-corpus-path "$lib" >"$base" || exit 1
    echo "wrote $base ($new)"
    ;;
*)
    echo "usage: abi/abi.sh check|update|force BUILD_DIR" >&2
    exit 2
    ;;
esac
