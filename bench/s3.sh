#!/usr/bin/env bash
# The S3 gateway beside the CLI, on a fresh local cluster (release build; a master, 3 datakeepers
# and a `tydfs s3` gateway as separate processes; replication 3), in one run:
#   1. a 1 GiB file: `tydfs put` and `aws s3 cp` up; `tydfs get` and `aws s3 cp` down (each to a
#      file, then `sync`); ratio = tydfs time / aws time (issue 15's target: >= 0.8);
#   2. `aws s3 cp` of a 1 KiB file, the whole process timed (target: < 0.8 s; without
#      100-continue handling botocore waits 1 s);
#   3. small objects: boto3 with 16 threads puts, gets (checked) and heads N objects of 4 KiB,
#      beside `tydfs bench --files N --size 4KiB --concurrency 16`;
#   reference: cp + sync of the 1 GiB file before and after (the disk here swings 2-4x).
# For each step: wall time and CPU seconds (user + system) of the client, the gateway, the
# master and each datakeeper.
# Usage: bench/s3.sh [SMALL_OBJECTS]   (default 2000). TYDFS_BIN=path uses that binary.
source "$(dirname "$0")/../scripts/lib.sh"
objects="${1:-2000}"

start_master
for i in 1 2 3; do start_datakeeper "dk$i"; done
wait_alive 3
start_s3_gateway

servers=(s3 master dk1 dk2 dk3)

head -c $((1 << 30)) /dev/urandom >"$work/big"
sync
reference before
aws --endpoint-url "$endpoint" s3 mb s3://bench >/dev/null

echo "== 1 GiB"
timed tydfs-put "$bin" put -q "$work/big" /bench/by-cli
timed aws-put aws --endpoint-url "$endpoint" s3 cp "$work/big" s3://bench/by-aws --only-show-errors
timed tydfs-get sh -c "'$bin' get -q /bench/by-aws '$work/got-cli' && sync"
timed aws-get sh -c "aws --endpoint-url '$endpoint' s3 cp s3://bench/by-cli '$work/got-aws' --only-show-errors && sync"
cmp "$work/big" "$work/got-cli" && cmp "$work/big" "$work/got-aws" || { echo "FAILED: a downloaded copy differs"; exit 1; }
rm -f "$work/got-cli" "$work/got-aws"
echo "put: aws s3 cp ÷ tydfs put = $(ratio tydfs-put aws-put) (target >= 0.8)"
echo "get: aws s3 cp ÷ tydfs get = $(ratio tydfs-get aws-get) (target >= 0.8)"

echo "== aws s3 cp of 1 KiB (whole process)"
head -c 1024 /dev/urandom >"$work/one-kib"
timed aws-version aws --version
echo "(aws --version sends no request: what awscli costs before any request)"
for run in 1 2 3; do timed "aws-1k-$run" aws --endpoint-url "$endpoint" s3 cp "$work/one-kib" "s3://bench/one-kib-$run" --only-show-errors; done

echo "== $objects objects of 4 KiB, 16 at a time"
timed boto3-small python3 - "$endpoint" "$objects" <<'EOF'
import boto3, concurrent.futures, json, os, sys, time
from botocore.config import Config
endpoint, count = sys.argv[1], int(sys.argv[2])
s3 = boto3.client("s3", endpoint_url=endpoint, config=Config(s3={"addressing_style": "path"}, max_pool_connections=32))
bodies = [os.urandom(4096) for _ in range(count)]
def phase(name, work):
    started = time.monotonic()
    def attempt(i):
        try:
            return work(i)
        except Exception as error:
            # A HEAD error has no body: ask again with GET to see S3's code and message.
            detail = getattr(error, "response", {}).get("Error", {})
            try:
                s3.get_object(Bucket="bench", Key=f"small/{i:06d}")
            except Exception as again:
                detail = getattr(again, "response", {}).get("Error", detail)
            sys.exit(f"boto3 {name} of object {i} failed: {error} {detail}")
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        results = list(pool.map(attempt, range(count)))
    seconds = time.monotonic() - started
    print(f"boto3 {name}: {count / seconds:.0f} objects/s ({seconds:.2f} s)", file=sys.stderr)
    return results
phase("put", lambda i: s3.put_object(Bucket="bench", Key=f"small/{i:06d}", Body=bodies[i]))
got = phase("get", lambda i: s3.get_object(Bucket="bench", Key=f"small/{i:06d}")["Body"].read() == bodies[i])
assert all(got), "a small object came back different"
phase("head", lambda i: s3.head_object(Bucket="bench", Key=f"small/{i:06d}"))
EOF
cat "$work/boto3-small.err"
timed tydfs-bench "$bin" bench --files "$objects" --size 4KiB --concurrency 16 --json
python3 -c "
import json, sys
report = json.load(open(sys.argv[1]))
print('tydfs bench: ' + ', '.join(f\"{phase} {report[phase]['filesPerSecond']:.0f} files/s\" for phase in ('put', 'get', 'stat', 'rm')))
" "$work/tydfs-bench.out"
reference after
