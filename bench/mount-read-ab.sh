#!/usr/bin/env bash
# Reads through the mount, two builds of `tydfs mount` against each other on one cluster
# (release build servers, replication 3, a 1 GiB file of random bytes): in alternating rounds,
# each build mounts afresh and, with the page cache dropped before each read, `cp` copies the
# file out (+ sync, checked with cmp) and `dd bs=1M` reads it to /dev/null. Per round it prints
# the wall times, the mount server's CPU seconds for each read and its peak resident memory.
# The disk here swings 2-4x within an hour: alternating rounds, not one run each, tell a change.
# Usage: bench/mount-read-ab.sh BINARY_A BINARY_B [ROUNDS]   (default 5; servers run TYDFS_BIN or a fresh build)
[ -x "${1:-}" ] && [ -x "${2:-}" ] || { echo "usage: $0 BINARY_A BINARY_B [ROUNDS]" >&2; exit 2; }
builds=("$(realpath "$1")" "$(realpath "$2")")
rounds="${3:-5}"
source "$(dirname "$0")/../scripts/lib.sh"

start_master
for i in 1 2 3; do start_datakeeper "dk$i"; done
wait_alive 3
head -c $((1024 << 20)) /dev/urandom >"$work/big"
"$bin" put -q "$work/big" /big

cpu_of_pid() { awk -v t="$ticks" '{ printf "%.2f", ($14 + $15) / t }' "/proc/$1/stat"; }
for round in $(seq 1 "$rounds"); do
    for side in 0 1; do
        build="${builds[$side]}"
        mnt="$work/mnt-$round-$side"
        mkdir -p "$mnt"
        "$build" mount "$mnt" --foreground --cache-dir "$work/cache-$round-$side" >>"$work/mount-ab.log" 2>&1 &
        pid_of[mount]=$!
        mounted_at="$mnt"
        until mountpoint -q "$mnt"; do
            kill -0 "${pid_of[mount]}" 2>/dev/null || { echo "FAILED: $build mount exited"; cat "$work/mount-ab.log"; exit 1; }
            sleep 0.1
        done
        sync; echo 1 >/proc/sys/vm/drop_caches
        start=$(now); cp "$mnt/big" "$work/got" && sync; copied=$(elapsed "$start")
        after_copy=$(cpu_of_pid "${pid_of[mount]}")
        cmp -s "$work/big" "$work/got" || { echo "FAILED: the copy out of $build's mount differs"; exit 1; }
        rm -f "$work/got"; sync; echo 1 >/proc/sys/vm/drop_caches
        start=$(now); dd if="$mnt/big" of=/dev/null bs=1M status=none; read_out=$(elapsed "$start")
        after_read=$(cpu_of_pid "${pid_of[mount]}")
        peak=$(awk '/VmHWM/ { printf "%.0f", $2 / 1024 }' "/proc/${pid_of[mount]}/status")
        echo "round $round, $(basename "$build"): cp out + sync ${copied} s (mount ${after_copy} CPU-s), dd ${read_out} s (mount $(awk -v a="$after_read" -v b="$after_copy" 'BEGIN { printf "%.2f", a - b }') CPU-s), peak ${peak} MiB"
        umount "$mnt"
        wait "${pid_of[mount]}"
        unset 'pid_of[mount]'
        mounted_at=""
    done
done
