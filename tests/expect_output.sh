#!/bin/sh
# Run a command and require its exit status and a line of its stdout matching an extended regex, so
# that a good command is tested for what it printed, not only for not crashing:
#   expect_output.sh STATUS PATTERN COMMAND [ARGS...]
want=$1
pattern=$2
shift 2
out=$("$@")
rc=$?
printf '%s\n' "$out" | tail -n 20
[ "$rc" -eq "$want" ] || { echo "FAIL: exit status $rc, expected $want"; exit 1; }
line=$(printf '%s\n' "$out" | grep -E -m 1 -e "$pattern") || { echo "FAIL: no line of stdout matches /$pattern/"; exit 1; }
echo "matched /$pattern/: $line"
exit 0
