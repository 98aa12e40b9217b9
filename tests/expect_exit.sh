#!/bin/sh
# Run a command and require its exit status and a single-line diagnostic on stderr that names what
# was wrong (FRAGMENT, a literal string such as '--canvas' or 'window[1]=0'):
#   expect_exit.sh STATUS FRAGMENT COMMAND [ARGS...]
want=$1
fragment=$2
shift 2
err=$("$@" 2>&1 >/dev/null)
rc=$?
lines=$(printf '%s\n' "$err" | grep -c .)
printf 'exit %s, stderr: %s\n' "$rc" "$err"
[ "$rc" -eq "$want" ] || { echo "FAIL: exit status $rc, expected $want"; exit 1; }
[ "$lines" -eq 1 ] || { echo "FAIL: $lines lines on stderr, expected one"; exit 1; }
case "$err" in
*"$fragment"*) ;;
*) echo "FAIL: the message does not name '$fragment'"; exit 1 ;;
esac
exit 0
