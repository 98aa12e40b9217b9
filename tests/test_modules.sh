#!/bin/sh
# The library an application ships: libstile.so exports only stile_* and needs no GPU runtime; the
# GPU backends are modules that load at run time, and one that cannot load (its runtime missing,
# another build's module, not a module at all) is listed with the reason while the CPU still runs.
#   test_modules.sh BUILD_DIR STILE_EXE HELLO_EXE WRONG_ABI_MODULE SOURCE_DIR
# Runtimes are hidden by copying the modules and renaming, with patchelf, the runtime library each
# one needs (libvulkan.so.1, libamdhip64.so.N) to a name no system has.
build=$1 stile=$2 hello=$3 wrong_abi=$4 src=$5
fails=0
ok() { echo "ok   $1"; }
bad() { echo "FAIL $1"; fails=$((fails + 1)); }
lib=$build/libstile.so

# 1. Exports: only stile_*, in libstile and in libstile_check; the oracle and harness are libstile_check's alone.
checklib=$build/libstile_check.so
for l in "$lib" "$checklib"; do
    others=$(nm -D --defined-only "$l" | awk '{print $3}' | grep -v '^stile_')
    [ -z "$others" ] && ok "$(basename "$l") exports only stile_* ($(nm -D --defined-only "$l" | grep -c ' stile_') symbols)" ||
        bad "$(basename "$l") exports other symbols: $others"
done
inboth=$(nm -D --defined-only "$lib" | awk '{print $3}' | grep -E '^stile_(oracle|check_|conf_|nmse)')
[ -z "$inboth" ] && ok "libstile.so holds no oracle, check or harness symbol" || bad "libstile.so still exports: $inboth"
needed=$(readelf -d "$checklib" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | tr '\n' ' ')
others=$(printf '%s\n' $needed | grep -Ev '^(libstile|libc|libm|libpthread|ld-linux[^.]*)\.so')
[ -z "$others" ] && ok "libstile_check.so needs only: $needed" || bad "libstile_check.so needs more than libstile, libc, libm, pthreads: $others"

# 2. libstile.so needs libc, libm, pthreads, libdl and CBLAS, nothing else: no GPU runtime, no jansson.
needed=$(readelf -d "$lib" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | tr '\n' ' ')
others=$(printf '%s\n' $needed | grep -Ev '^(libc|libm|libpthread|libdl|ld-linux[^.]*|libopenblas|libblas|libcblas)\.so')
[ -z "$others" ] && ok "libstile.so needs only: $needed" || bad "libstile.so needs more than libc, libm, pthreads, dl and CBLAS: $others"

modules=$(ls "$build"/libstile-*.so 2>/dev/null)
if [ -z "$modules" ]; then
    echo "no backend modules in $build (a build without GPU backends, or -Dmodules=false): nothing more to check"
    [ "$fails" -eq 0 ] && exit 0 || exit 1
fi
if ! command -v patchelf >/dev/null; then
    echo "SKIP: patchelf is not installed (apt-get install patchelf; ./run test installs it)"
    exit 77
fi
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

# 3. Hidden runtimes: every module that needs a runtime library gets a name for it that no system has.
mkdir "$scratch/hidden"
hidden=""
for m in $modules; do
    name=$(basename "$m" .so | sed 's/^libstile-//')
    cp "$m" "$scratch/hidden/"
    for dep in $(readelf -d "$m" | sed -n 's/.*(NEEDED).*\[\(libvulkan[^]]*\|libamdhip64[^]]*\|libjansson[^]]*\)\]/\1/p'); do
        patchelf --replace-needed "$dep" "libhidden-by-stile-test-$dep" "$scratch/hidden/$(basename "$m")"
        hidden="$hidden $name"
    done
done
info=$(STILE_BACKEND_PATH=$scratch/hidden "$stile" info 2>&1)
echo "$info" | sed 's/^/    /'
echo "$info" | grep -Eq '^cpu +yes +1 +ready' && ok "cpu ready with the GPU runtimes hidden" || bad "cpu not ready with the GPU runtimes hidden"
for name in $hidden; do
    [ "$name" = json ] && continue
    echo "$info" | grep -Eq "^$name +yes +0 +unavailable: .*libhidden-by-stile-test-" &&
        ok "$name: listed as unavailable with the loader's reason" || bad "$name: not listed as unavailable with the reason"
done
[ -z "$hidden" ] && echo "    (no module here needs a runtime library by name: nothing hidden)"
out=$(STILE_BACKEND_PATH=$scratch/hidden "$hello" 2>&1) && ok "an application linked with libstile runs (auto device): $(echo "$out" | tail -n 1)" ||
    bad "the example fails with the GPU runtimes hidden: $out"
case " $hidden " in
*" json "*)
    STILE_BACKEND_PATH=$scratch/hidden "$stile" plan --canvas 4x4x4 --tile 2x2x2 --window 1x1x1 >/dev/null &&
        ok "jansson hidden: stile plan runs" || bad "jansson hidden: stile plan fails"
    err=$(STILE_BACKEND_PATH=$scratch/hidden "$stile" plan --canvas 4x4x4 --tile 2x2x2 --window 1x1x1 --json 2>&1 >/dev/null)
    case "$err" in
    *"JSON part of stile is unavailable: "*libhidden-by-stile-test-libjansson*) ok "jansson hidden: the plan's JSON refused with: $err" ;;
    *) bad "jansson hidden: the plan's JSON: $err" ;;
    esac
    ;;
esac
for name in $hidden; do
    [ "$name" = json ] && continue
    err=$(STILE_BACKEND_PATH=$scratch/hidden "$stile" plan --device "$name:0" --canvas 4x4x4 --tile 2x2x2 --window 1x1x1 2>&1 >/dev/null)
    case "$err" in
    *"backend is unavailable: "*) ok "$name:0 refused with: $err" ;;
    *) bad "$name:0 with its runtime hidden: $err" ;;
    esac
done

# 4. A module of another build (ABI number) and a file that is no module at all.
mkdir "$scratch/foreign"
cp "$wrong_abi" "$scratch/foreign/libstile-cuda.so"
cp "$(readelf -d "$lib" >/dev/null && ldd "$lib" | awk '/libm\.so/ {print $3}')" "$scratch/foreign/libstile-hip.so"
info=$(STILE_BACKEND_PATH=$scratch/foreign "$stile" info 2>&1)
echo "$info" | sed 's/^/    /'
echo "$info" | grep -Eq '^cuda +yes +0 +unavailable: .*module ABI 999, this library needs' && ok "another build's module: refused with its ABI" ||
    bad "another build's module not refused with its ABI"
echo "$info" | grep -Eq '^hip +yes +0 +unavailable: .*not a stile backend module' && ok "a library that is no module: refused" ||
    bad "a library that is no module was not refused"
echo "$info" | grep -Eq '^cpu +yes +1 +ready' && ok "cpu ready beside them" || bad "cpu not ready beside refused modules"

# 5. A program built with a header of a newer API than the library fails to link.
mkdir -p "$scratch/inc/stile"
cp "$src"/include/stile/*.h "$build"/stile_version.h "$scratch/inc/stile/"
printf '#include <stile/stile.h>\nint main(void) { return stile_version() == 0; }\n' >"$scratch/prog.c"
if cc -std=c11 -Wall -Wextra -Werror -I"$scratch/inc" "$scratch/prog.c" -o "$scratch/prog" -L"$build" -lstile 2>"$scratch/err"; then
    ok "a program built with this header links"
else
    bad "a program built with this header does not link: $(cat "$scratch/err")"
fi
api=$(sed -n 's/^#define STILE_API_VERSION \([0-9]*\)$/\1/p' "$src/include/stile/stile.h")
# a header of the next API version, and one of API 1 (before the oracle moved to libstile_check, so a
# program built for it may call stile_oracle): neither may link
for other in $((api + 1)) 1; do
    [ "$other" -eq "$api" ] && continue
    sed -i "s/^#define STILE_API_VERSION .*/#define STILE_API_VERSION $other/" "$scratch/inc/stile/stile.h"
    if cc -std=c11 -Wall -Wextra -Werror -I"$scratch/inc" "$scratch/prog.c" -o "$scratch/prog2" -L"$build" -lstile 2>"$scratch/err"; then
        bad "a program built with a header of API $other linked against an API $api library"
    elif grep -q "stile_api_$other" "$scratch/err"; then
        ok "a program built with a header of API $other fails to link: $(grep -m1 "stile_api_$other" "$scratch/err")"
    else
        bad "linking failed, but not for stile_api_$other: $(cat "$scratch/err")"
    fi
done

[ "$fails" -eq 0 ] && echo "all good" || echo "$fails failure(s)"
[ "$fails" -eq 0 ]
