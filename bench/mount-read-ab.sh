#!/usr/bin/env bash
# Reads through the mount, two builds of `tydfs mount` against each other on one cluster
# (release build servers, replication 3, a 1 GiB file of random bytes): in rounds whose order
# alternates (A B, B A, A B, ...), each build mounts afresh and, with the page cache dropped
# before each read, `cp` copies the file out (+ sync, checked with cmp) and `dd bs=1M` reads it
# to /dev/null. Per read it prints the wall time and the mount server's CPU seconds for that read
# alone, and the server's peak resident memory.
# The disk here swings 2-4x within an hour: alternating rounds, not one run each, tell a change.
# Usage: bench/mount-read-ab.sh BINARY_A BINARY_B [ROUNDS]   (default 5; the servers run
# TYDFS_BIN, or a fresh release build)
[ -x "${1:-}" ] && [ -x "${2:-}" ] || { echo "usage: $0 BINARY_A BINARY_B [ROUNDS]" >&2; exit 2; }
builds=("$(realpath "$1")" "$(realpath "$2")")
names=(A B)
rounds="${3:-5}"
[[ "$rounds" =~ ^[1-9][0-9]*$ ]] || { echo "ROUNDS must be a positive number, not $rounds" >&2; exit 2; }
source "$(dirname "$0")/../scripts/lib.sh"

start_master
for i in 1 2 3; do start_datakeeper "dk$i"; done
wait_alive 3
head -c $((1024 << 20)) /dev/urandom >"$work/big"
"$bin" put -q "$work/big" /big
echo "A: ${builds[0]}"
echo "B: ${builds[1]}"

cpu_of_pid() { awk -v t="$ticks" '{ printf "%.2f", ($14 + $15) / t }' "/proc/$1/stat"; }
spent() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
for round in $(seq 1 "$rounds"); do
    order=(0 1)
    if [ $((round % 2)) -eq 0 ]; then order=(1 0); fi
    for side in "${order[@]}"; do
        mnt="$work/mnt-$round-$side"
        mkdir -p "$mnt"
        "${builds[$side]}" mount "$mnt" --foreground --cache-dir "$work/cache-$round-$side" >>"$work/mount-ab.log" 2>&1 &
        pid_of[mount]=$!
        mounted_at="$mnt"
        for _ in $(seq 1 300); do
            mountpoint -q "$mnt" && break
            kill -0 "${pid_of[mount]}" 2>/dev/null || break
            sleep 0.1
        done
        mountpoint -q "$mnt" || { echo "FAILED: ${names[$side]} did not mount"; cat "$work/mount-ab.log"; exit 1; }
        sync; echo 1 >/proc/sys/vm/drop_caches
        before=$(cpu_of_pid "${pid_of[mount]}")
        start=$(now)
        cp "$mnt/big" "$work/got" || { echo "FAILED: cp out of ${names[$side]}'s mount"; exit 1; }
        sync
        copied=$(elapsed "$start")
        after_copy=$(cpu_of_pid "${pid_of[mount]}")
        cmp -s "$work/big" "$work/got" || { echo "FAILED: the copy out of ${names[$side]}'s mount differs"; exit 1; }
        rm -f "$work/got"; sync; echo 1 >/proc/sys/vm/drop_caches
        before_read=$(cpu_of_pid "${pid_of[mount]}")
        start=$(now)
        dd if="$mnt/big" of=/dev/null bs=1M status=none || { echo "FAILED: dd out of ${names[$side]}'s mount"; exit 1; }
        read_out=$(elapsed "$start")
        after_read=$(cpu_of_pid "${pid_of[mount]}")
        peak=$(awk '/VmHWM/ { printf "%.0f", $2 / 1024 }' "/proc/${pid_of[mount]}/status")
        echo "round $round, ${names[$side]}: cp out + sync ${copied} s (mount $(spent "$before" "$after_copy") CPU-s), dd ${read_out} s (mount $(spent "$before_read" "$after_read") CPU-s), peak ${peak} MiB"
        umount "$mnt"
        wait "${pid_of[mount]}"
        unset 'pid_of[mount]'
        mounted_at=""
    done
done
