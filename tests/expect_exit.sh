#!/bin/sh
# Run a command and require its exit status and a single-line diagnostic on stderr:
#   expect_exit.sh STATUS COMMAND [ARGS...]
want=$1
shift
err=$("$@" 2>&1 >/dev/null)
rc=$?
lines=$(printf '%s\n' "$err" | grep -c .)
printf 'exit %s, stderr: %s\n' "$rc" "$err"
[ "$rc" -eq "$want" ] || { echo "FAIL: exit status $rc, expected $want"; exit 1; }
[ "$lines" -eq 1 ] || { echo "FAIL: $lines lines on stderr, expected one"; exit 1; }
exit 0
