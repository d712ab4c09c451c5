#!/usr/bin/env bash
# S3 GETs, two builds of the `tydfs s3` gateway against each other on one cluster (release
# build servers, replication 3, a 1 GiB object of random bytes): both gateways run side by side,
# and in rounds whose order alternates (A B, B A, ...) `aws s3 cp` downloads the object through
# each (checked with cmp). Per download it prints the wall time, the gateway's CPU seconds for
# it, and the gateway's peak resident memory so far and its current one. `aws s3 cp` asks for
# 8 MiB ranges; WHOLE=1 downloads with one GET of the whole object (`aws s3api get-object`).
# Usage: bench/s3-get-ab.sh BINARY_A BINARY_B [ROUNDS [CHUNK_SIZE]]   (default 4 rounds, the
# master's default chunk size; the servers run TYDFS_BIN, or a fresh release build)
[ -x "${1:-}" ] && [ -x "${2:-}" ] || { echo "usage: $0 BINARY_A BINARY_B [ROUNDS [CHUNK_SIZE]]" >&2; exit 2; }
builds=("$(realpath "$1")" "$(realpath "$2")")
names=(A B)
rounds="${3:-4}"
[[ "$rounds" =~ ^[1-9][0-9]*$ ]] || { echo "ROUNDS must be a positive number, not $rounds" >&2; exit 2; }
source "$(dirname "$0")/../scripts/lib.sh"

start_master ${4:+--chunk-size "$4"}
for i in 1 2 3; do start_datakeeper "dk$i"; done
wait_alive 3
start_s3_gateway  # for its credentials and to make the bucket
for side in 0 1; do
    "${builds[$side]}" s3 --listen "127.0.0.1:$((port + 2 + side))" --master "$TYDFS_MASTER" --secret-file "$TYDFS_SECRET_FILE" \
        >>"$work/s3-$side.log" 2>&1 &
    pid_of[s3-$side]=$!
    until grep -qs "gateway listening" "$work/s3-$side.log"; do
        kill -0 "${pid_of[s3-$side]}" 2>/dev/null || { echo "FAILED: ${names[$side]}'s gateway exited"; cat "$work/s3-$side.log"; exit 1; }
        sleep 0.1
    done
done
echo "A: ${builds[0]}"
echo "B: ${builds[1]}"
head -c $((1 << 30)) /dev/urandom >"$work/big"
aws --endpoint-url "$endpoint" s3 mb s3://bench >/dev/null
"$bin" put -q "$work/big" /bench/object

for round in $(seq 1 "$rounds"); do
    order=(0 1)
    if [ $((round % 2)) -eq 0 ]; then order=(1 0); fi
    for side in "${order[@]}"; do
        pid="${pid_of[s3-$side]}"
        before=$(cpu_of "s3-$side")
        start=$(now)
        if [ "${WHOLE:-}" = 1 ]; then
            aws --endpoint-url "http://127.0.0.1:$((port + 2 + side))" s3api get-object --bucket bench --key object "$work/got" >/dev/null
        else
            aws --endpoint-url "http://127.0.0.1:$((port + 2 + side))" s3 cp s3://bench/object "$work/got" --only-show-errors
        fi || { echo "FAILED: the download through ${names[$side]}"; exit 1; }
        took=$(elapsed "$start")
        after=$(cpu_of "s3-$side")
        cmp -s "$work/big" "$work/got" || { echo "FAILED: the object through ${names[$side]} differs"; exit 1; }
        rm -f "$work/got"
        echo "round $round, ${names[$side]}: $([ "${WHOLE:-}" = 1 ] && echo "one GET, ")aws down ${took} s (gateway $(awk -v a="$before" -v b="$after" 'BEGIN { printf "%.2f", b - a }') CPU-s), gateway peak so far $(awk '/VmHWM/ { printf "%.0f", $2 / 1024 }' "/proc/$pid/status") MiB, now $(awk '/VmRSS/ { printf "%.0f", $2 / 1024 }' "/proc/$pid/status") MiB"
    done
done
