#!/usr/bin/env bash
# Big files against the machine's own limits, in one run (release build, a fresh local cluster:
# a master and 3 datakeepers as separate processes, replication 3):
#   1. reference before: 3 × cp + sync, cp + sync, and cat to /dev/null of the same file, and
#      the floor of any networked get: the file sent over one loopback TCP stream into a new
#      file + sync (bench/tcpcopy.c, no checksum or protocol; built with gcc when there is one);
#   2. put of the file (default 1 GiB), get to a local file, get to /dev/null;
#   3. reference after (the disk here swings 2–4× within an hour; a ratio is only fair against
#      the nearer reference, so both are printed);
#   4. 32 transfers at once (16 gets of a 256 MiB file, 16 puts of 64 MiB): peak RSS of every process;
#   5. a hung datakeeper (SIGSTOP; the master still thinks it alive): a get of the 256 MiB file
#      next to a normal one, and a put of 256 MiB with a 4th datakeeper started for it (full
#      replication expected).
# Ratio = reference seconds ÷ TYDFS seconds (1.00 = as fast as the machine's own copy).
# CPU-seconds per GiB moved are printed for every process (the data path is CPU-bound on 2 cores).
# Usage: bench/run.sh [SIZE_MiB]   (default 1024; needs ~10 × SIZE of free disk in $TMPDIR)
# TYDFS_BIN=path uses that binary instead of building one (see scripts/lib.sh).
source "$(dirname "$0")/../scripts/lib.sh"
size_mib="${1:-1024}"
gib=$(awk -v m="$size_mib" 'BEGIN { print m / 1024 }')

# The master keeps a hung datakeeper "alive" for a minute, so step 5 measures the client's own detection.
start_master --heartbeat-timeout 60s
for i in 1 2 3; do start_datakeeper "dk$i"; done
wait_alive 3

# cpu_line GIB CLIENT_CPU: CPU-seconds per GiB of the client and each server since `servers_mark`.
cpu_line() {
    local line="client $(awk -v c="$2" -v g="$1" 'BEGIN { printf "%.2f", c / g }')" s
    for s in "${servers[@]}"; do
        line+="  $s $(awk -v a="${cpu_before[$s]}" -v b="$(cpu_of "$s")" -v g="$1" 'BEGIN { printf "%.2f", (b - a) / g }')"
    done
    echo "$line"
}
# client NAME COMMAND...: runs a client, records wall seconds, CPU seconds and peak RSS (KiB).
client() {
    local name="$1"; shift
    local t; t=$(now)
    /usr/bin/time -f "%U %S %M" -o "$work/$name.time" "$@"
    wall[$name]=$(elapsed "$t")
    ccpu[$name]=$(awk 'END { printf "%.2f", $1 + $2 }' "$work/$name.time")
    crss[$name]=$(awk 'END { print $3 }' "$work/$name.time")
}
declare -A wall=() ccpu=() crss=()
reset_peaks() { local s; for s in "$@"; do echo 5 >"/proc/${pid_of[$s]}/clear_refs"; done; }
peak_mib() { awk '/VmHWM/ { printf "%d", $2 / 1024 }' "/proc/${pid_of[$1]}/status"; }

reference() {
    local t
    rm -f "$work"/ref*; sync
    t=$(now); for i in 1 2 3; do cp "$work/input" "$work/ref$i"; done; sync; ref_three[$1]=$(elapsed "$t")
    rm -f "$work"/ref*; sync
    t=$(now); cp "$work/input" "$work/ref1"; sync; ref_one[$1]=$(elapsed "$t")
    rm -f "$work"/ref*; sync
    t=$(now); cat "$work/input" >/dev/null; ref_cat[$1]=$(elapsed "$t")
    if [ -x "$work/tcpcopy" ]; then
        t=$(now); "$work/tcpcopy" "$work/input" "$work/ref1"; sync; ref_tcp[$1]=$(elapsed "$t")
        rm -f "$work"/ref*; sync
    fi
}
declare -A ref_three=() ref_one=() ref_cat=() ref_tcp=()
if command -v gcc >/dev/null; then gcc -O2 -o "$work/tcpcopy" "$(dirname "$0")/tcpcopy.c"; fi
ratio() { awk -v r="$1" -v s="$2" 'BEGIN { printf "%.2f", r / s }'; }

echo "bench/run.sh: $size_mib MiB, $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, $(uname -r)"
head -c "$((size_mib * 1024 * 1024))" /dev/urandom >"$work/input"
sync
# The first copy of a freshly written file is always the slowest here: make it untimed, so the
# reference is the machine at its usual speed, not a slow outlier that flatters TYDFS.
cp "$work/input" "$work/warm"; sync; rm -f "$work/warm"; sync
reference before

servers_mark; client put "$bin" put "$work/input" /big; put_cpu=$(cpu_line "$gib" "${ccpu[put]}")
# The put is durable on the datakeepers, but the kernel may still be writing back: start the get
# from a quiet disk, as the reference starts from one.
sync
# A get writes through the page cache like cp, so it is timed with its sync, like the reference.
servers_mark; client get "$bin" get /big "$work/output"; t=$(now); sync
get_sync=$(awk -v a="${wall[get]}" -v b="$(elapsed "$t")" 'BEGIN { printf "%.2f", a + b }')
get_cpu=$(cpu_line "$gib" "${ccpu[get]}")
get_reads=$(datakeepers_disk_reads)
cmp "$work/input" "$work/output"
rm -f "$work/output"; sync
servers_mark; client cat "$bin" get /big - >/dev/null 2>"$work/cat.err"; cat_cpu=$(cpu_line "$gib" "${ccpu[cat]}")
reference after

printf '\n| step | TYDFS s | reference | ref s before / after | ratio before / after |\n|---|---|---|---|---|\n'
printf '| put %s MiB, factor 3 | %s | 3 × cp + sync | %s / %s | %s / %s |\n' "$size_mib" "${wall[put]}" \
    "${ref_three[before]}" "${ref_three[after]}" "$(ratio "${ref_three[before]}" "${wall[put]}")" "$(ratio "${ref_three[after]}" "${wall[put]}")"
printf '| get to a file, then sync | %s | cp + sync | %s / %s | %s / %s |\n' "$get_sync" \
    "${ref_one[before]}" "${ref_one[after]}" "$(ratio "${ref_one[before]}" "$get_sync")" "$(ratio "${ref_one[after]}" "$get_sync")"
if [ -n "${ref_tcp[before]:-}" ]; then
    printf '| get to a file, then sync | %s | one TCP stream into a file + sync | %s / %s | %s / %s |\n' "$get_sync" \
        "${ref_tcp[before]}" "${ref_tcp[after]}" "$(ratio "${ref_tcp[before]}" "$get_sync")" "$(ratio "${ref_tcp[after]}" "$get_sync")"
fi
printf '| get to a file (no sync) | %s | cp + sync | %s / %s | %s / %s |\n' "${wall[get]}" \
    "${ref_one[before]}" "${ref_one[after]}" "$(ratio "${ref_one[before]}" "${wall[get]}")" "$(ratio "${ref_one[after]}" "${wall[get]}")"
printf '| get to /dev/null | %s | cat to /dev/null | %s / %s | %s / %s |\n' "${wall[cat]}" \
    "${ref_cat[before]}" "${ref_cat[after]}" "$(ratio "${ref_cat[before]}" "${wall[cat]}")" "$(ratio "${ref_cat[after]}" "${wall[cat]}")"
echo
echo "CPU-seconds per GiB:"
echo "  put:              $put_cpu"
echo "  get to a file:    $get_cpu"
echo "  get to /dev/null: $cat_cpu"
echo "datakeepers' disk reads during the get to a file (MiB, of $size_mib): $get_reads"
echo "peak RSS (MiB) so far: client put $((crss[put] / 1024)), get $((crss[get] / 1024)); master $(peak_mib master), dk1 $(peak_mib dk1), dk2 $(peak_mib dk2), dk3 $(peak_mib dk3)"

# 4. 32 transfers at once.
"$bin" rm /big >/dev/null
head -c $((256 * 1024 * 1024)) "$work/input" >"$work/quarter"
head -c $((64 * 1024 * 1024)) "$work/input" >"$work/small"
"$bin" put "$work/quarter" /quarter
sync
reset_peaks "${servers[@]}"
pids=()
for i in $(seq 1 16); do
    /usr/bin/time -f "%M" -o "$work/mget$i.rss" "$bin" get /quarter - >/dev/null &
    pids+=($!)
    /usr/bin/time -f "%M" -o "$work/mput$i.rss" "$bin" put "$work/small" "/m/$i" >/dev/null &
    pids+=($!)
done
failed=0
for pid in "${pids[@]}"; do wait "$pid" || failed=$((failed + 1)); done
client_peak=$(cat "$work"/mget*.rss "$work"/mput*.rss | sort -n | tail -1)
echo
echo "32 transfers at once (16 gets of 256 MiB, 16 puts of 64 MiB): $failed failed; peak RSS (MiB):" \
    "master $(peak_mib master), dk1 $(peak_mib dk1), dk2 $(peak_mib dk2), dk3 $(peak_mib dk3), largest client $((client_peak / 1024))"

# 5. A hung datakeeper.
client normal "$bin" get /quarter "$work/q1"
# Reads go to the least busy replica first: once all report themselves idle, dk2 is first for some chunks.
until "$bin" nodes --json | python3 -c 'import json,sys; sys.exit(any(n["inFlight"] for n in json.load(sys.stdin)["nodes"] if n["alive"]))'; do sleep 0.2; done
sleep 1
kill -STOP "${pid_of[dk2]}"
client hung "$bin" get /quarter "$work/q2"
cmp "$work/quarter" "$work/q2"
start_datakeeper dk4
until "$bin" nodes --json | grep -q '"dk4"'; do sleep 0.2; done
sleep 1
client hungput "$bin" put "$work/quarter" /quarter-during-hang
kill -CONT "${pid_of[dk2]}"
replicas=$("$bin" stat --json /quarter-during-hang | python3 -c 'import json,sys; f=json.load(sys.stdin); print(min(len(c["replicas"]) for c in f["chunks"]))')
echo "dk2 hung (SIGSTOP): get of 256 MiB ${wall[hung]} s (normal ${wall[normal]} s, $(awk -v a="${wall[hung]}" -v b="${wall[normal]}" 'BEGIN { printf "%+.1f", a - b }') s);" \
    "put of 256 MiB ${wall[hungput]} s, every chunk on at least $replicas datakeepers"
