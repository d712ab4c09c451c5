#!/usr/bin/env bash
# Moves one file (default 2 GiB) through `tydfs put` and `tydfs get` on a release build with a
# master and 3 datakeepers as separate processes, then prints every process's peak RSS
# (VmHWM; the client's from /usr/bin/time) and the transfer times next to `cp` of the same bytes.
# Usage: scripts/memory-check.sh [SIZE_MiB]   — needs ~4× SIZE of free disk in $TMPDIR.
set -euo pipefail
cd "$(dirname "$0")/.."
size_mib="${1:-2048}"
swift build -c release --product tydfs >/dev/null
bin="$PWD/.build/release/tydfs"
work="$(mktemp -d "${TMPDIR:-/tmp}/tydfs-memory.XXXXXX")"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

port=$((20000 + RANDOM % 20000))
"$bin" master --listen "127.0.0.1:$port" --data "$work/master" >"$work/master.log" 2>&1 &
pids+=($!)
export TYDFS_MASTER="http://127.0.0.1:$port"
for i in 1 2 3; do
    until grep -q "listening" "$work/master.log"; do sleep 0.1; done
    "$bin" datakeeper --listen 127.0.0.1:0 --data "$work/dk$i" --id "dk$i" >"$work/dk$i.log" 2>&1 &
    pids+=($!)
done
until [ "$("$bin" nodes --json | grep -c '"alive" : true')" = 3 ]; do sleep 0.2; done

head -c "$((size_mib * 1024 * 1024))" /dev/urandom >"$work/input"
sync
seconds() { local start=$(date +%s.%N); "$@"; echo "$(date +%s.%N) - $start" | bc -l; }

cp_s=$(seconds bash -c "cp '$work/input' '$work/cp-copy' && sync")
rm -f "$work/cp-copy"
put_s=$(seconds /usr/bin/time -f "%M" -o "$work/put.rss" "$bin" put "$work/input" /big >/dev/null)
get_s=$(seconds /usr/bin/time -f "%M" -o "$work/get.rss" "$bin" get /big "$work/output")
cmp "$work/input" "$work/output"

printf 'file: %d MiB, put %.2f s, get %.2f s, cp+sync %.2f s; round trip byte-exact\n' "$size_mib" "$put_s" "$get_s" "$cp_s"
printf 'peak RSS (MiB): client put %d, client get %d\n' "$(( $(cat "$work/put.rss") / 1024 ))" "$(( $(cat "$work/get.rss") / 1024 ))"
names=(master dk1 dk2 dk3)
for i in "${!pids[@]}"; do
    hwm=$(awk '/VmHWM/ {print int($2/1024)}' "/proc/${pids[$i]}/status")
    printf 'peak RSS (MiB): %s %d\n' "${names[$i]}" "$hwm"
done
