#!/bin/sh
# `stile` output files: a symlink, FIFO or device named as an output is written through, never
# replaced by a regular file; a command's outputs appear all or none. Run as: test_outputs.sh STILE
# Device nodes are copies made with mknod in a scratch directory (as root), so a regression replaces
# the copy, never /dev/null or /dev/full themselves.
set -u
stile=$1
d=$(mktemp -d "${TMPDIR:-/tmp}/stile-outputs-XXXXXX") || exit 1
bg=
trap 'if [ -n "$bg" ]; then kill "$bg" 2>/dev/null; fi; rm -rf "$d"' EXIT
fails=0
ok() { echo "ok   $*"; }
bad() { echo "FAIL $*"; fails=$((fails + 1)); }
# expect NAME STATUS COMMAND...: run it (output kept in $d/log) and require its exit status
expect() {
    name=$1 want=$2
    shift 2
    "$@" > "$d/log" 2>&1
    rc=$?
    if [ "$rc" -eq "$want" ]; then ok "$name (exit $rc)"; else bad "$name: exit $rc, expected $want"; sed 's/^/     /' "$d/log"; fi
}
small() { "$stile" run --device cpu --canvas 4x4x4 --tile 2x2x2 --window 1x1x1 --head-dim 8 "$@"; }
# Leftover temporaries show up as new names in $d.
listing() { ls -A "$d" | grep -v '^log$'; }

# Character devices: copies of /dev/null and /dev/full where mknod works, else the real ones (then
# writing is safe: only root could replace them, and root can mknod).
if mknod "$d/null" c 1 3 2>/dev/null && mknod "$d/full" c 1 7 2>/dev/null; then
    null=$d/null full=$d/full
else
    rm -f "$d/null"
    [ "$(id -u)" -ne 0 ] || { echo "SKIP: root without mknod: will not risk /dev/null and /dev/full"; exit 77; }
    echo "note: mknod refused (not root): writing to /dev/null and /dev/full themselves"
    null=/dev/null full=/dev/full
fi

expect "a reference output is written" 0 small --out "$d/ref.npy"

# A symlink is followed and kept; its target is replaced; a dangling one creates its target.
echo old > "$d/target.npy"
ln -s target.npy "$d/link.npy"
expect "--out to a symlink succeeds" 0 small --out "$d/link.npy"
if [ -L "$d/link.npy" ] && cmp -s "$d/ref.npy" "$d/target.npy"; then ok "the symlink is kept and its target written"
else bad "the symlink was replaced or its target not written"; fi
ln -s new.npy "$d/dangling.npy"
expect "--out to a dangling symlink succeeds" 0 small --out "$d/dangling.npy"
if [ -L "$d/dangling.npy" ] && cmp -s "$d/ref.npy" "$d/new.npy"; then ok "a dangling symlink's target is created"
else bad "a dangling symlink was replaced or its target not created"; fi

# A replaced file keeps its permission bits.
small --out "$d/perm.npy" > /dev/null && chmod 640 "$d/perm.npy"
expect "--out over an existing file succeeds" 0 small --out "$d/perm.npy"
if [ "$(stat -c %a "$d/perm.npy")" = 640 ]; then ok "the replaced file keeps mode 640"; else bad "mode became $(stat -c %a "$d/perm.npy")"; fi

# Character devices are written through.
expect "--out to a null device succeeds" 0 small --out "$null"
if [ -c "$null" ]; then ok "the null device is still a character device"; else bad "the null device was replaced"; fi
before=$(listing)
expect "--out to a full device fails" 1 small --out "$full"
if [ -c "$full" ]; then ok "the full device is still a character device"; else bad "the full device was replaced"; fi
if [ "$(listing)" = "$before" ]; then ok "no temporary is left behind"; else bad "left behind: $(listing)"; fi

# A FIFO is written through to its reader (timeout: a regression never opens it).
mkfifo "$d/fifo"
timeout 60 cat "$d/fifo" > "$d/from-fifo" &
bg=$!
expect "--out to a FIFO succeeds" 0 small --out "$d/fifo"
if [ -p "$d/fifo" ]; then ok "the FIFO is still a FIFO"; wait "$bg"; else bad "the FIFO was replaced"; kill "$bg" 2>/dev/null; fi
bg=
if cmp -s "$d/ref.npy" "$d/from-fifo"; then ok "the FIFO's reader got the output"; else bad "the FIFO's reader got something else"; fi

# Directories are refused before any work (exit 2, one line).
expect "--out to a directory is refused up front" 2 small --out "$d"
[ -d "$d" ] && ok "the directory is untouched"

# All or nothing: a bad second output leaves no first output.
expect "run --lse into a missing directory is refused up front" 2 small --out "$d/o1.npy" --lse "$d/nodir/l.npy"
if [ -e "$d/o1.npy" ]; then bad "run wrote --out although --lse is impossible"; else ok "run wrote nothing"; fi
before=$(listing)
expect "run --lse to a full device fails" 1 small --out "$d/o2.npy" --lse "$full"
if [ -e "$d/o2.npy" ]; then bad "run wrote --out although --lse failed"; else ok "run wrote nothing"; fi
if [ "$(listing)" = "$before" ]; then ok "no temporary is left behind"; else bad "left behind: $(listing)"; fi

# calibrate: a capture of one sample whose q, k, v are outputs of `stile run`.
mkdir "$d/cap"
for t in q k v; do small --seed 7 --out "$d/cap/$t.npy" > /dev/null || bad "capture $t"; done
cat > "$d/cap/manifest.json" << 'EOF'
{"canvas": [4, 4, 4], "tile": [2, 2, 2], "heads": 1, "head_dim": 8, "text": 0,
 "samples": [{"step": 0, "layer": 0, "q": "q.npy", "k": "k.npy", "v": "v.npy"}]}
EOF
calibrate() { "$stile" calibrate "$d/cap" --device cpu --candidates '1,1,1;2,2,2' "$@"; }
expect "calibrate --markdown to a full device fails" 1 calibrate --out "$d/s1.json" --markdown "$full"
if [ -e "$d/s1.json" ]; then bad "calibrate wrote --out although --markdown failed"; else ok "calibrate wrote no strategy"; fi
expect "calibrate --markdown into a missing directory is refused up front" 2 calibrate --out "$d/s2.json" --markdown "$d/nodir/r.md"
if [ -e "$d/s2.json" ]; then bad "calibrate wrote --out"; else ok "calibrate wrote no strategy"; fi
expect "calibrate writes both outputs" 0 calibrate --out "$d/s3.json" --markdown "$d/r3.md"
if [ -s "$d/s3.json" ] && [ -s "$d/r3.md" ]; then ok "both outputs exist"; else bad "an output is missing"; fi

# conformance
conformance() { "$stile" conformance --device cpu:0 --case 'partial tiles' "$@"; }
expect "conformance --markdown to a full device fails" 1 conformance --json "$d/c1.json" --markdown "$full"
if [ -e "$d/c1.json" ]; then bad "conformance wrote --json although --markdown failed"; else ok "conformance wrote nothing"; fi
expect "conformance --markdown into a missing directory is refused up front" 2 conformance --json "$d/c2.json" --markdown "$d/nodir/c.md"
if [ -e "$d/c2.json" ]; then bad "conformance wrote --json"; else ok "conformance wrote nothing"; fi

# bench (one output) and chart (two)
bench() { "$stile" bench --device cpu --canvas 4x8x8 --tile 2x4x4 --window 1x1x1 --head-dim 64 --repeat 1 --warmup 0 --no-gemm-ref "$@"; }
expect "bench --json into a missing directory is refused up front" 2 bench --json "$d/nodir/b.json"
expect "bench --json to a full device fails" 1 bench --json "$full"
if [ -c "$full" ]; then ok "the full device is still a character device"; else bad "the full device was replaced"; fi
expect "bench --json writes a record" 0 bench --json "$d/b.json"
expect "chart --markdown to a full device fails" 1 "$stile" chart "$d/b.json" --out "$d/c.svg" --markdown "$full"
if [ -e "$d/c.svg" ]; then bad "chart wrote --out although --markdown failed"; else ok "chart wrote nothing"; fi
expect "chart --markdown into a missing directory is refused up front" 2 "$stile" chart "$d/b.json" --out "$d/c.svg" --markdown "$d/nodir/t.md"
if [ -e "$d/c.svg" ]; then bad "chart wrote --out"; else ok "chart wrote nothing"; fi

echo "$fails failure(s)"
[ "$fails" -eq 0 ]
