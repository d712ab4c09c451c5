#!/usr/bin/env bash
# Small files on a fresh local cluster (release build, a master and 3 datakeepers as separate
# processes, replication 3), beside the machine's own reference measured in the same run:
#   1. `tydfs bench --files 10000 --size 4KiB --concurrency 16`: put, get (every byte checked), stat, rm;
#   2. `put -r` then `get -r` of a folder of 2,000 files of 4 KiB (checked with diff -r);
#   3. `ls` of a folder of 100,000 entries (made with `bench --keep --size 0`);
#   reference: `cp -r` of the same 2,000 files to a local folder + one `sync`, before and after
#   (the disk here swings 2–4x, so a ratio only means something against the nearer of the two).
# For each step it prints the wall time and the CPU seconds (user + system) of the client, the
# master and each datakeeper (servers from /proc/PID/stat, clients from /usr/bin/time).
# Targets for context, not asserted: put >= 2,000 files/s, get >= 8,000, stat >= 10,000,
# put -r >= 1,000, get -r >= 2,000, ls of 100k < 1 s.
# Usage: bench/small-files.sh [BENCH_FILES [TREE_FILES [LS_ENTRIES]]]   (defaults 10000 2000 100000;
# about 10 minutes on a 2-core machine with today's master, most of it making the 100,000 entries)
# TYDFS_BIN=path uses that binary instead of building one (see scripts/lib.sh).
source "$(dirname "$0")/../scripts/lib.sh"
bench_files="${1:-10000}"
tree_files="${2:-2000}"
ls_entries="${3:-100000}"

start_master
for i in 1 2 3; do start_datakeeper "dk$i"; done
wait_alive 3

reference() {
    rm -rf "$work/cp-copy"; sync
    local t; t=$(now)
    cp -r "$work/tree" "$work/cp-copy"; sync
    local s; s=$(elapsed "$t")
    echo "reference ($1): cp -r of $tree_files files of 4 KiB + sync: ${s} s ($(awk -v n="$tree_files" -v s="$s" 'BEGIN { printf "%.0f", n / s }') files/s)"
}

mkdir -p "$work/tree"
head -c "$((tree_files * 4096))" /dev/urandom | split -b 4096 -a 6 -d - "$work/tree/f"
sync

echo "== small files: release build, master + 3 datakeepers, replication 3, $(nproc) cores =="
reference before
echo
echo "-- tydfs bench --files $bench_files --size 4KiB --concurrency 16"
timed bench "$bin" bench --files "$bench_files" --size 4KiB --concurrency 16
cat "$work/bench.out"
echo
echo "-- put -r / get -r of $tree_files files of 4 KiB (--concurrency 16)"
timed put-r "$bin" put -r "$work/tree" /tree --concurrency 16
cat "$work/put-r.out"
timed get-r "$bin" get -r /tree "$work/tree-back" --concurrency 16
cat "$work/get-r.out"
diff -r "$work/tree" "$work/tree-back" && echo "get -r: byte-exact (diff -r)"
echo
echo "-- ls of a folder of $ls_entries entries"
timed make-ls "$bin" bench --files "$ls_entries" --size 0 --concurrency 16 --keep --prefix /many
grep '^put' "$work/make-ls.out"
timed ls "$bin" ls /many
echo "ls printed $(wc -l <"$work/ls.out") lines in $(cat "$work/ls.wall") s"
timed ls-json "$bin" ls /many --json
echo
reference after
