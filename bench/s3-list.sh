#!/usr/bin/env bash
# Listing a big bucket through the S3 gateway (release build, a master, 3 datakeepers and a
# `tydfs s3` gateway on loopback): OBJECTS objects of 1 byte put with `tydfs put -r`, half in one
# folder and half in 100 folders, then listed with boto3's paginator 1,000 keys a page:
#   flat        every key, no delimiter (what `aws s3 ls --recursive` and `aws s3 sync` ask);
#   folders     the bucket's top level with the delimiter / (the 100 folders and the flat folder);
#   one-folder  the keys of one of the 100 folders.
# Each listing is checked (every key once, in order) and timed, with the CPU seconds of the
# gateway and the master. Usage: bench/s3-list.sh [OBJECTS]   (default 20000).
# TYDFS_BIN=path uses that binary instead of building one (see scripts/lib.sh).
source "$(dirname "$0")/../scripts/lib.sh"
objects="${1:-20000}"
servers=(s3 master)

start_master
for i in 1 2 3; do start_datakeeper "dk$i"; done
wait_alive 3
start_s3_gateway
half=$((objects / 2))
mkdir -p "$work/tree/flat"
for ((i = 0; i < half; i++)); do printf x >"$work/tree/flat/o$(printf %06d "$i")"; done
for ((d = 0; d < 100; d++)); do
    mkdir -p "$work/tree/d$(printf %03d "$d")"
    for ((i = 0; i < half / 100; i++)); do printf x >"$work/tree/d$(printf %03d "$d")/o$(printf %04d "$i")"; done
done
"$bin" put -r -q "$work/tree" /bucket
echo "== listing a bucket of $(find "$work/tree" -type f | wc -l) objects, 1,000 keys a page"
cat >"$work/list.py" <<'PY'
import boto3, sys
from botocore.config import Config
endpoint, prefix, delimiter, expected = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
s3 = boto3.client("s3", endpoint_url=endpoint, config=Config(s3={"addressing_style": "path"}))
extra = {"Delimiter": delimiter} if delimiter else {}
keys, pages = [], 0
for page in s3.get_paginator("list_objects_v2").paginate(Bucket="bucket", Prefix=prefix, PaginationConfig={"PageSize": 1000}, **extra):
    pages += 1
    keys += [o["Key"] for o in page.get("Contents", [])] + [p["Prefix"] for p in page.get("CommonPrefixes", [])]
assert len(keys) == expected and len(set(keys)) == expected, (len(keys), expected)
assert keys == sorted(keys, key=lambda k: k.encode()) or delimiter, "keys out of order"
print(f"{expected} entries in {pages} pages")
PY
timed flat python3 "$work/list.py" "$endpoint" "" "" "$(find "$work/tree" -type f | wc -l)"
echo "   $(cat "$work/flat.out")"
timed folders python3 "$work/list.py" "$endpoint" "" "/" 101
echo "   $(cat "$work/folders.out")"
timed one-folder python3 "$work/list.py" "$endpoint" "d042/" "" $((half / 100))
echo "   $(cat "$work/one-folder.out")"
