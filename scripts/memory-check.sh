#!/usr/bin/env bash
# Moves one file (default 2 GiB) through `tydfs put` and `tydfs get` on a release build with a
# master and 3 datakeepers as separate processes, then prints every process's peak RSS
# (VmHWM; the client's from /usr/bin/time) and the transfer times next to `cp` of the same bytes.
# Usage: scripts/memory-check.sh [SIZE_MiB]   — needs ~5× SIZE of free disk in $TMPDIR.
source "$(dirname "$0")/lib.sh"
size_mib="${1:-2048}"
start_master
for i in 1 2 3; do start_datakeeper "dk$i"; done
wait_alive 3

head -c "$((size_mib * 1024 * 1024))" /dev/urandom >"$work/input"
sync
t=$(now); cp "$work/input" "$work/cp-copy"; sync; cp_s=$(elapsed "$t"); rm -f "$work/cp-copy"
t=$(now); /usr/bin/time -f "%M" -o "$work/put.rss" "$bin" put "$work/input" /big >/dev/null; put_s=$(elapsed "$t")
t=$(now); /usr/bin/time -f "%M" -o "$work/get.rss" "$bin" get /big "$work/output"; get_s=$(elapsed "$t")
cmp "$work/input" "$work/output"

echo "file: $size_mib MiB; put ${put_s} s, get ${get_s} s, cp+sync ${cp_s} s; round trip byte-exact"
echo "peak RSS (MiB): client put $(( $(tail -1 "$work/put.rss") / 1024 )), client get $(( $(tail -1 "$work/get.rss") / 1024 ))"
for name in master dk1 dk2 dk3; do
    echo "peak RSS (MiB): $name $(awk '/VmHWM/ {print int($2/1024)}' "/proc/${pid_of[$name]}/status")"
done
