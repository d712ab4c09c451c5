#!/usr/bin/env bash
# Self-healing figures on a release build (master + 4 datakeepers, factor 3, default timeouts):
#  1. time from a datakeeper's kill -9 to every chunk back at 3 live replicas, for SIZE_MiB of data
#     (default 1024), split as it is detected (heartbeat timeout) and repaired;
#  2. the scrubber's read rate over one datakeeper's chunks (unthrottled, then at its default 64 MiB/s);
#  3. the cost of the checksum: CRC32C (`tydfs checksum`) against `sha256sum` on the same file.
# Usage: scripts/selfheal-benchmark.sh [SIZE_MiB]
source "$(dirname "$0")/lib.sh"
size_mib="${1:-1024}"
start_master
for i in 1 2 3 4; do start_datakeeper "dk$i"; done
wait_alive 4

head -c "$((size_mib * 1024 * 1024))" /dev/urandom >"$work/input"
"$bin" put "$work/input" /data >/dev/null

# 3. checksum cost, file in the page cache
cat "$work/input" >/dev/null
t=$(now); "$bin" checksum "$work/input" >/dev/null; crc_s=$(elapsed "$t")
t=$(now); sha256sum "$work/input" >/dev/null; sha_s=$(elapsed "$t")

# 1. repair
on_dk1=$("$bin" stat /data --json | grep -c '"id" : "dk1"' || true)
t=$(now)
kill -9 "${pid_of[dk1]}"; unset 'pid_of[dk1]'
until "$bin" nodes --json | tr -d '\n ' | grep -q '"alive":false'; do sleep 0.1; done
dead_s=$(elapsed "$t")
until "$bin" fsck --json | tr -d '\n ' | grep -q '"underReplicatedChunks":0'; do sleep 0.2; done
repaired_s=$(elapsed "$t")
"$bin" fsck >/dev/null
"$bin" get /data "$work/output" && cmp "$work/input" "$work/output"

# 2. scrub rate: restart dk2 so its first pass starts now
kill "${pid_of[dk2]}"; wait "${pid_of[dk2]}" 2>/dev/null || true
start_datakeeper dk2 --scrub-rate 100GiB
until grep -q "scrub pass done" "$work/dk2.log"; do sleep 0.2; done
fast=$(grep "scrub pass done" "$work/dk2.log" | tail -1 | grep -o 'mib_per_second=[0-9]*' | cut -d= -f2)
kill "${pid_of[dk2]}"; wait "${pid_of[dk2]}" 2>/dev/null || true
start_datakeeper dk2
until [ "$(grep -c "scrub pass done" "$work/dk2.log")" = 2 ]; do sleep 0.5; done
throttled=$(grep "scrub pass done" "$work/dk2.log" | tail -1 | grep -o 'mib_per_second=[0-9]*' | cut -d= -f2)
held=$(grep "scrub pass done" "$work/dk2.log" | tail -1 | grep -o 'bytes=[0-9]*' | cut -d= -f2)

echo "data: $size_mib MiB in $("$bin" stat /data --json | grep -c '"index"') chunks, $on_dk1 of them on the killed datakeeper"
echo "kill -9 → marked dead: ${dead_s} s (heartbeat timeout 5 s); → every chunk at 3 live replicas: ${repaired_s} s"
echo "scrubber over $((held / 1048576)) MiB: ${fast} MiB/s unthrottled (page cache), ${throttled} MiB/s at the default --scrub-rate 64MiB"
echo "checksum of $size_mib MiB (page cache): CRC32C ${crc_s} s, sha256sum ${sha_s} s"
