#!/usr/bin/env bash
# `tydfs mount` beside the CLI, on a fresh local cluster (release build; a master and 3
# datakeepers as separate processes; replication 3), in one run:
#   1. write 1 GiB: `tydfs put`, and `cp` into the mount (which puts the file at close);
#   2. read 1 GiB: `tydfs get` to a file + sync, `cp` out of the mount + sync, and `cat` of the
#      mounted file to /dev/null;
#   ratios: tydfs time ÷ mount time (issue 18's target: >= 0.8), and the mount against the
#   machine's own cp + sync (MooseFS's mount measured 0.45x for writes and 0.28-0.35x for reads
#   here); reference: cp + sync of the 1 GiB file before and after (the disk here swings 2-4x);
#   3. memory: 6 readers and 3 writers at once (issue 18: a mount stays under 256 MiB).
# For each step: wall time and CPU seconds (user + system) of the client (for the mount: the
# copying program), the mount's server, the master and each datakeeper; and the mount's
# largest resident memory.
# Usage: bench/mount.sh [MiB]   (default 1024). TYDFS_BIN=path uses that binary.
source "$(dirname "$0")/../scripts/lib.sh"
mib="${1:-1024}"

start_master
for i in 1 2 3; do start_datakeeper "dk$i"; done
wait_alive 3
start_mount "$work/mnt"
servers=(mount master dk1 dk2 dk3)

head -c $((mib << 20)) /dev/urandom >"$work/big"
sync
reference before

echo "== write $mib MiB"
timed tydfs-put "$bin" put -q "$work/big" /by-cli
timed mount-write cp "$work/big" "$work/mnt/by-mount"
echo "== read $mib MiB"
sync; echo 1 >/proc/sys/vm/drop_caches 2>/dev/null || true
timed tydfs-get sh -c "'$bin' get -q /by-mount '$work/got-cli' && sync"
timed mount-read sh -c "cp '$work/mnt/by-cli' '$work/got-mount' && sync"
# (Not `timed … cat FILE`: `timed` keeps a command's output, and 1 GiB of it would be timed as a file write.)
timed mount-cat sh -c "cat '$work/mnt/by-mount' >/dev/null"
cmp "$work/big" "$work/got-cli" && cmp "$work/big" "$work/got-mount" || { echo "FAILED: a copy differs"; exit 1; }
rm -f "$work/got-cli" "$work/got-mount"
echo "== memory: 6 readers of the $mib MiB file and 3 writers of $((mib / 4)) MiB at once"
head -c $((mib << 18)) "$work/big" >"$work/quarter"
mixed() {
    local writers=() i status=0
    for i in 1 2 3 4 5 6; do cat "$work/mnt/by-cli" >/dev/null & done
    for i in 1 2 3; do cp "$work/quarter" "$work/mnt/quarter-$i" & writers+=($!); done
    for i in "${writers[@]}"; do wait "$i" || status=1; done
    wait
    return $status
}
export -f mixed
export work
timed mount-mixed bash -c mixed
for i in 1 2 3; do cmp "$work/quarter" "$work/mnt/quarter-$i" || { echo "FAILED: quarter-$i differs"; exit 1; }; done
reference after
peak=$(awk '/VmHWM/ { printf "%.0f", $2 / 1024 }' "/proc/${pid_of[mount]}/status")

best=$(awk -v a="$(cat "$work/reference-before.wall")" -v b="$(cat "$work/reference-after.wall")" 'BEGIN { print (a < b ? a : b) }')
echo "== ratios"
echo "write: tydfs put ÷ cp into the mount = $(ratio tydfs-put mount-write) (target >= 0.8)"
echo "read:  tydfs get ÷ cp out of the mount = $(ratio tydfs-get mount-read) (target >= 0.8)"
echo "write: (3 × cp + sync) ÷ cp into the mount = $(awk -v r="$best" -v m="$(wall mount-write)" 'BEGIN { printf "%.2f", 3 * r / m }') (MooseFS's mount: 0.45)"
echo "read:  (cp + sync) ÷ cp out of the mount = $(awk -v r="$best" -v m="$(wall mount-read)" 'BEGIN { printf "%.2f", r / m }') (MooseFS's mount: 0.28-0.35)"
echo "mount server's peak resident memory: $peak MiB"
