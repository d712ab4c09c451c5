#!/usr/bin/env bash
# A datakeeper holding many chunks: whether it stays alive, and how long until the master has
# reconciled its chunk report, at first start and after a restart. Target of the issue (not
# asserted): a datakeeper holding 3,000,000 chunks stays alive; after a restart the master has
# reconciled it within 30 s.
# usage: bench/datakeeper-scale.sh [CHUNKS]   (default 3,000,000)
# A generator writes CHUNKS empty chunks (random 128-bit ids) straight into the datakeeper's
# volumes, record by record as the datakeeper itself appends them (see VolumeRecord: a 32-byte
# header with its CRC32C, then the frame, here only the 4-byte CRC32C trailer of no data = 0),
# then a master and that datakeeper are started as separate processes. The master knows no file,
# so every reported chunk is "unreferenced" to it (kept, since the orphan grace is 1 h).
# It prints: the datakeeper's start-up time (to "listening"), the time from its start until the
# master logs "chunk report reconciled", the RSS (now and peak) and CPU seconds of both, and, over
# 60 s of `tydfs nodes --json` once a second, whether the datakeeper stayed alive and its largest
# secondsSinceHeartbeat; then the same after a SIGTERM and a restart of the datakeeper.
# The volume is in the page cache after generation, so the start-up scan reads a warm file.
# TYDFS_BIN=path uses that binary instead of building one (see scripts/lib.sh).
source "$(dirname "$0")/../scripts/lib.sh"
chunks="${1:-3000000}"
watch_seconds="${WATCH_SECONDS:-60}"
give_up_seconds=600

started=$(now)
mkdir -p "$work/dk1/volumes"
echo dk1 >"$work/dk1/datakeeper-id"
python3 - "$work/dk1/volumes" "$chunks" <<'PY'
import os, sys
import numpy as np

folder, count = sys.argv[1], int(sys.argv[2])
POLY = 0x82F63B78
TABLE = []
for n in range(256):
    c = n
    for _ in range(8):
        c = (c >> 1) ^ POLY if c & 1 else c >> 1
    TABLE.append(c)

def crc32c(data):
    c = 0xFFFFFFFF
    for b in data:
        c = TABLE[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF

# The vectors of Tests/TYDFSCoreTests/ChunkTests.swift (RFC 3720).
for data, want in [(b"123456789", 0xE3069283), (bytes(32), 0x8A9136AA), (b"\xff" * 32, 0x62A8AB43),
                   (bytes(range(32)), 0x46DD794E), (b"", 0)]:
    if crc32c(data) != want:
        sys.exit(f"generator: CRC32C of {data!r} is {crc32c(data):08x}, expected {want:08x}")

# Header: "TYDV", kind 1 (chunk), version 1, 0, 0, id high (LE u64), id low (LE u64),
# frame length 4 (LE u32), CRC32C of bytes 0..<28 (LE u32). Frame: the trailer, CRC32C(no data) = 0.
FRAME = 4
HEAD = b"TYDV" + bytes([1, 1, 0, 0])
LENGTH = FRAME.to_bytes(4, "little")
RECORD = 32 + FRAME
# CRC32C (init and final xor ~0) is affine: for 28-byte messages, crc(base ^ d) = crc(base) ^
# crc(d) ^ crc(zeros). So the header checksum is crc(header with id 0) xor one table entry per
# id byte, computed for millions of headers at once.
zero = crc32c(bytes(28))
base = crc32c(HEAD + bytes(16) + LENGTH)
tables = np.zeros((16, 256), dtype=np.uint32)
for position in range(16):
    for value in range(256):
        message = bytearray(28)
        message[8 + position] = value
        tables[position, value] = crc32c(bytes(message)) ^ zero

def records(n):
    ids = np.frombuffer(os.urandom(16 * n), dtype=np.uint8).reshape(n, 16)
    crc = np.full(n, base, dtype=np.uint32)
    for position in range(16):
        crc ^= tables[position][ids[:, position]]
    out = np.zeros((n, RECORD), dtype=np.uint8)
    out[:, 0:8] = np.frombuffer(HEAD, dtype=np.uint8)
    out[:, 8:24] = ids  # high then low half, each little-endian: any 8 random bytes are a u64
    out[:, 24:28] = np.frombuffer(LENGTH, dtype=np.uint8)
    out[:, 28:32] = crc.astype("<u4").view(np.uint8).reshape(n, 4)
    # bytes 32..<36 stay 0: the empty chunk's trailer
    for row in out[:3]:  # the vectorised checksum against the byte-by-byte one
        if int.from_bytes(bytes(row[28:32]), "little") != crc32c(bytes(row[:28])):
            sys.exit("generator: vectorised header CRC32C disagrees with the direct one")
    return out

# A volume takes records while it is below 1 GiB (Limits.volumeMaxBytes), as ChunkStore does.
per_volume = -(-(1 << 30) // RECORD)
batch = 1 << 20
volume, left = 1, count
while left > 0:
    in_volume = min(left, per_volume)
    with open(f"{folder}/{volume}.vol", "wb", buffering=0) as f:
        done = 0
        while done < in_volume:
            n = min(batch, in_volume - done)
            f.write(records(n).tobytes())
            done += n
    left -= in_volume
    volume += 1
PY
echo "generated $chunks chunk records in $(elapsed "$started") s: $(ls "$work/dk1/volumes" | wc -l) volume(s), $(du -sh "$work/dk1/volumes" | cut -f1) on disk"

mib_of() { awk -v k="$2" '$1 == k ":" { printf "%d", $2 / 1024 }' "/proc/${pid_of[$1]}/status"; }
dk_running() { kill -0 "${pid_of[dk1]}" 2>/dev/null; }
gone() {
    echo "datakeeper exited (or gave no answer within $give_up_seconds s); last lines of its log:"
    tail -n 20 "$work/dk1.log"
    exit 1
}
declare -A result=()

# run NAME: starts dk1 and waits for it to listen and for the master to reconcile its report
# (the n-th "chunk report reconciled" line of the master's log, n = reports reconciled before + 1).
run() {
    local name="$1" before t0 listen line
    before=$(grep -c "chunk report reconciled" "$work/master.log" || true)
    : >"$work/dk1.log"
    t0=$(now)
    start_datakeeper dk1
    until grep -qs "listening" "$work/dk1.log"; do
        dk_running || gone
        sleep 0.05
    done
    listen=$(elapsed "$t0")
    until [ "$(grep -c "chunk report reconciled" "$work/master.log" || true)" -gt "$before" ]; do
        dk_running || gone
        [ "$(elapsed "$t0" | cut -d. -f1)" -lt "$give_up_seconds" ] || gone
        sleep 0.1
    done
    result[$name.reconciled]=$(elapsed "$t0")
    result[$name.listen]=$listen
    line=$(grep "chunk report reconciled" "$work/master.log" | tail -n 1)
    result[$name.reported]=$(grep -o ' chunks=[0-9]*' <<<"$line" | cut -d= -f2)
    result[$name.loaded]=$(grep "chunk store loaded" "$work/dk1.log" | grep -o 'seconds=[0-9.]*' | cut -d= -f2 | awk '{ printf "%.2f", $1 }' || true)
    echo "$name: datakeeper listening after $listen s (its store load: ${result[$name.loaded]:-?} s)," \
        "master reconciled ${result[$name.reported]} chunks ${result[$name.reconciled]} s after the datakeeper's start"
    echo "  master: $(sed 's/.*tydfs\.master: //' <<<"$line")"
    snapshot "$name.at-reconcile"
}

# snapshot LABEL: RSS now and peak, CPU seconds so far, of both processes.
snapshot() {
    local label="$1" server dk_rss dk_hwm dk_cpu m_rss m_hwm m_cpu
    for server in dk1 master; do
        result[$label.$server]="$(mib_of "$server" VmRSS) $(mib_of "$server" VmHWM) $(cpu_of "$server")"
    done
    read -r dk_rss dk_hwm dk_cpu <<<"${result[$label.dk1]}"
    read -r m_rss m_hwm m_cpu <<<"${result[$label.master]}"
    echo "  $label: datakeeper RSS $dk_rss MiB (peak $dk_hwm), CPU $dk_cpu s; master RSS $m_rss MiB (peak $m_hwm), CPU $m_cpu s"
}

# watch_alive NAME SECONDS: `tydfs nodes --json` once a second; whether dk1 stayed alive, its largest
# secondsSinceHeartbeat, and how many polls failed or did not list it.
watch_alive() {
    local name="$1" seconds="$2" t0 polls=0 summary
    local max_since=0 dead=0 failed=0
    t0=$(now)
    while [ "$(elapsed "$t0" | cut -d. -f1)" -lt "$seconds" ]; do
        local next
        next=$(awk -v a="$(now)" 'BEGIN { printf "%.3f", a + 1 }')
        polls=$((polls + 1))
        if summary=$("$bin" nodes --json 2>/dev/null | python3 -c '
import json, sys
row = [n for n in json.load(sys.stdin)["nodes"] if n["id"] == "dk1"]
print("%s %.3f" % (row[0]["alive"], row[0]["secondsSinceHeartbeat"]) if row else "missing 0")'); then
            read -r alive since <<<"$summary"
            [ "$alive" = True ] || dead=$((dead + 1))
            max_since=$(awk -v a="$max_since" -v b="$since" 'BEGIN { print (b > a ? b : a) }')
        else
            failed=$((failed + 1))
        fi
        dk_running || gone
        sleep "$(awk -v n="$next" -v t="$(now)" 'BEGIN { d = n - t; printf "%.3f", (d > 0 ? d : 0) }')"
    done
    result[$name.watch]="$polls $dead $failed $max_since"
    echo "  $name: $polls polls of nodes in $seconds s: alive in $((polls - dead - failed)), not alive in $dead," \
        "failed $failed; max secondsSinceHeartbeat $max_since s"
    snapshot "$name.after-watch"
}

start_master
run start
watch_alive start "$watch_seconds"

t0=$(now)
kill -TERM "${pid_of[dk1]}"
wait "${pid_of[dk1]}" 2>/dev/null || true
stopped=$(elapsed "$t0")
echo "datakeeper stopped by SIGTERM in $stopped s"
run restart
watch_alive restart "$watch_seconds"

row() { printf '%-38s %14s %14s\n' "$@"; }
field() { cut -d' ' -f"$2" <<<"${result[$1]}"; }
echo
echo "datakeeper holding $chunks chunks ($ticks ticks/s; MiB; CPU seconds cumulative per process)"
row "" "first start" "after restart"
row "datakeeper listening (s)" "${result[start.listen]}" "${result[restart.listen]}"
row "datakeeper store load, own log (s)" "${result[start.loaded]:-?}" "${result[restart.loaded]:-?}"
row "start -> master reconciled (s)" "${result[start.reconciled]}" "${result[restart.reconciled]}"
row "chunks in the reconciled report" "${result[start.reported]}" "${result[restart.reported]}"
for at in at-reconcile after-watch; do
    row "datakeeper RSS / peak, $at" "$(field start.$at.dk1 1) / $(field start.$at.dk1 2)" "$(field restart.$at.dk1 1) / $(field restart.$at.dk1 2)"
    row "datakeeper CPU s, $at" "$(field start.$at.dk1 3)" "$(field restart.$at.dk1 3)"
    row "master RSS / peak, $at" "$(field start.$at.master 1) / $(field start.$at.master 2)" "$(field restart.$at.master 1) / $(field restart.$at.master 2)"
    row "master CPU s, $at" "$(field start.$at.master 3)" "$(field restart.$at.master 3)"
done
row "nodes polls in ${watch_seconds} s (all/not alive/failed)" "$(field start.watch 1)/$(field start.watch 2)/$(field start.watch 3)" "$(field restart.watch 1)/$(field restart.watch 2)/$(field restart.watch 3)"
row "max secondsSinceHeartbeat (s)" "$(field start.watch 4)" "$(field restart.watch 4)"
row "SIGTERM -> exit (s)" "" "$stopped"
