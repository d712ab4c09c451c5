#!/usr/bin/env bash
# Runs the ceph/s3-tests suite (vendored in shared/vendor) against a fresh `tydfs cluster`'s S3
# gateway on loopback.
#
#   scripts/s3-tests.sh            the test ids in scripts/s3-tests-subset.txt (the ones that pass);
#                                  exits non-zero if any of them fails
#   scripts/s3-tests.sh --all      the whole of s3tests/functional/test_s3.py, to explore; reports
#                                  counts, and exits 0 whatever failed
#   scripts/s3-tests.sh [--all] -- PYTEST-ARGS...   passes more arguments to pytest (e.g. -x, -k)
#
# Environment:
#   TYDFS_BIN        binary to test (default: builds .build/release/tydfs, as scripts/lib.sh does)
#   S3TESTS_VENV     a venv to (make once and) reuse; default: a new one in the temp dir
#   S3TESTS_ARCHIVE  the suite (default: shared/vendor/ceph-s3-tests-*.tar.gz beside the repo)
#   S3TESTS_TIMEOUT  seconds allowed per test (default: 120)
#   S3TESTS_JOBS     pytest-xdist workers (default: 2; 1 runs in one process)
#   S3TESTS_KEEP=1   keep the temp dir (logs, config, junit.xml) and print its path
#   S3TESTS_JUNIT    also copy pytest's junit XML here
set -euo pipefail
# A relative TYDFS_BIN means relative to where the script was started.
if [ -n "${TYDFS_BIN:-}" ]; then TYDFS_BIN="$(realpath "$TYDFS_BIN")"; fi
cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo="$PWD"

all=0
extra=()
while [ "$#" -gt 0 ]; do
    case "$1" in
        --all) all=1; shift ;;
        --) shift; extra=("$@"); break ;;
        -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
        *) echo "s3-tests: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done

subset_file="$repo/scripts/s3-tests-subset.txt"
archive="${S3TESTS_ARCHIVE:-}"
if [ -z "$archive" ]; then
    for candidate in "$repo"/../shared/vendor/ceph-s3-tests-*.tar.gz /work/shared/vendor/ceph-s3-tests-*.tar.gz; do
        if [ -f "$candidate" ]; then archive="$candidate"; break; fi
    done
fi
if [ -z "$archive" ] || [ ! -f "$archive" ]; then
    echo "s3-tests: no ceph-s3-tests archive found (set S3TESTS_ARCHIVE)" >&2
    exit 2
fi

if [ -z "${TYDFS_BIN:-}" ]; then
    swift build -c release --product tydfs >/dev/null
fi
bin_src="${TYDFS_BIN:-$repo/.build/release/tydfs}"
if [ ! -x "$bin_src" ]; then
    echo "s3-tests: no executable at $bin_src" >&2
    exit 2
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/tydfs-s3tests.XXXXXX")"
cluster_pid=""
pytest_pid=""
cleanup() {
    local rc=$?
    if [ -n "$pytest_pid" ]; then
        # pytest runs in a session of its own (setsid), with its xdist workers: end that group.
        kill -TERM -- "-$pytest_pid" 2>/dev/null || true
        wait "$pytest_pid" 2>/dev/null || true
    fi
    if [ -n "$cluster_pid" ]; then
        kill "$cluster_pid" 2>/dev/null || true
        # Give it 10 s to stop cleanly, then make sure.
        for _ in $(seq 100); do kill -0 "$cluster_pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$cluster_pid" 2>/dev/null || true
        wait "$cluster_pid" 2>/dev/null || true
    fi
    if [ "${S3TESTS_KEEP:-0}" = 1 ]; then
        echo "s3-tests: kept $work" >&2
    else
        rm -rf "$work"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# The binary is copied so that a rebuild while the tests run neither changes nor blocks it.
bin="$work/tydfs"
cp "$bin_src" "$bin"

started=$SECONDS
tar -xzf "$archive" -C "$work"
suite="$(echo "$work"/s3-tests*)"
[ -d "$suite" ] || suite="$(dirname "$(find "$work" -name pytest.ini | head -1)")"

# --- Python environment ---------------------------------------------------------------------
venv="${S3TESTS_VENV:-$work/venv}"
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import boto3, pytest, pytest_timeout, xdist, munch' 2>/dev/null; then
    echo "s3-tests: making the venv in $venv (pip, from PyPI)"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check -r "$suite/requirements.txt" pytest-timeout pytest-xdist \
        >"$work/pip.log" 2>&1 || { cat "$work/pip.log" >&2; exit 2; }
fi

# Two changes to the suite's cleanup (nuke_bucket, run before and after every test), so that one
# gap of the gateway does not make every later test error in setup or teardown. The tests that
# use the missing features themselves still fail.
# 1. It lists with ListObjectVersions: where the gateway answers NotImplemented, ListObjectsV2.
cat >"$suite/conftest.py" <<'EOF'
import s3tests.functional as _f
from botocore.exceptions import ClientError

_orig_list_versions = _f.list_versions

def _list_versions(client, bucket, batch_size):
    try:
        client.list_object_versions(Bucket=bucket, MaxKeys=1)
    except ClientError as e:
        if e.response.get('Error', {}).get('Code') != 'NotImplemented':
            raise
        kwargs = {'Bucket': bucket, 'MaxKeys': batch_size}
        while True:
            listing = client.list_objects_v2(**kwargs)
            objs = listing.get('Contents', [])
            if objs:
                yield [{'Key': o['Key']} for o in objs]
            if not listing.get('IsTruncated'):
                return
            kwargs['ContinuationToken'] = listing['NextContinuationToken']
    else:
        yield from _orig_list_versions(client, bucket, batch_size)

_f.list_versions = _list_versions

# 2. It does not abort the multipart uploads that a test left open. The gateway keeps them in
#    the bucket and DeleteBucket answers BucketNotEmpty, so one such test made every later test
#    error in setup. Abort them first.
_orig_nuke_bucket = _f.nuke_bucket

def _nuke_bucket(client, bucket):
    try:
        kwargs = {'Bucket': bucket}
        while True:
            listing = client.list_multipart_uploads(**kwargs)
            for u in listing.get('Uploads', []):
                try:
                    client.abort_multipart_upload(Bucket=bucket, Key=u['Key'], UploadId=u['UploadId'])
                except ClientError:
                    pass
            if not listing.get('IsTruncated'):
                break
            kwargs['KeyMarker'] = listing.get('NextKeyMarker')
            kwargs['UploadIdMarker'] = listing.get('NextUploadIdMarker')
    except ClientError:
        pass
    _orig_nuke_bucket(client, bucket)

_f.nuke_bucket = _nuke_bucket
EOF

# --- Cluster ----------------------------------------------------------------------------------
# free_port: a port below the ephemeral range (32768-60999) that nothing listens on now.
free_port() {
    python3 - "$@" <<'EOF'
import random, socket, sys
taken = {int(p) for p in sys.argv[1:]}
for _ in range(200):
    p = random.randint(20000, 32000)
    if p in taken:
        continue
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p))
    except OSError:
        continue
    finally:
        s.close()
    print(p)
    break
else:
    sys.exit("no free port")
EOF
}
master_port="$(free_port)"
s3_port="$(free_port "$master_port")"
mkdir -p "$work/home"
HOME="$work/home" "$bin" cluster --datakeepers 3 --data "$work/data" \
    --port "$master_port" --s3-port "$s3_port" >"$work/cluster.log" 2>&1 &
cluster_pid=$!

deadline=$((SECONDS + 60))
until grep -qs "tydfs cluster: master on" "$work/cluster.log" && [ -s "$work/data/master/admin-client.conf" ]; do
    if ! kill -0 "$cluster_pid" 2>/dev/null || [ "$SECONDS" -ge "$deadline" ]; then
        echo "s3-tests: the cluster did not start; its log:" >&2
        cat "$work/cluster.log" >&2
        exit 2
    fi
    sleep 0.2
done
export TYDFS_MASTER="http://127.0.0.1:$master_port"
export TYDFS_CONFIG="$work/data/master/admin-client.conf"
# Wait for the three datakeepers, so the first PUT has somewhere to go.
until [ "$(HOME="$work/home" "$bin" nodes --json 2>/dev/null | grep -c '"alive" : true' || true)" -ge 3 ]; do
    if [ "$SECONDS" -ge "$deadline" ]; then
        echo "s3-tests: datakeepers not alive after 60 s" >&2
        HOME="$work/home" "$bin" nodes >&2 || true
        exit 2
    fi
    sleep 0.2
done

# Five more keys: the suite's alt, tenant, iam, iam-root and iam-alt-root users. Every key sees
# every bucket (TYDFS has no owners), so only the tests that do not need isolation can pass.
for _ in 1 2 3 4 5; do
    HOME="$work/home" "$bin" key create --json
done >"$work/keys.json"

"$venv/bin/python" - "$work/data/master/admin-client.conf" "$work/keys.json" "$s3_port" >"$work/s3tests.conf" <<'EOF'
import json, sys
admin = json.load(open(sys.argv[1]))
text, keys, i = open(sys.argv[2]).read(), [], 0
decoder = json.JSONDecoder()
while True:
    while i < len(text) and text[i].isspace():
        i += 1
    if i >= len(text):
        break
    doc, i = decoder.raw_decode(text, i)
    keys.append((doc["accessKeyId"], doc["secretAccessKey"]))
assert len(keys) == 5, keys
print(f"""[DEFAULT]
host = 127.0.0.1
port = {sys.argv[3]}
is_secure = False
ssl_verify = False

[fixtures]
bucket prefix = s3t-{{random}}-
""")
users = [("s3 main", (admin["access-key-id"], admin["secret-access-key"]))] + list(zip(
    ["s3 alt", "s3 tenant", "iam", "iam root", "iam alt root"], keys))
for n, (section, (key_id, secret)) in enumerate(users):
    print(f"[{section}]\ndisplay_name = user{n}\nuser_id = user{n}\nemail = user{n}@example.com")
    print(f"access_key = {key_id}\nsecret_key = {secret}")
    if section == "s3 tenant":
        print("tenant = testx")
    print()
EOF

# --- Tests ------------------------------------------------------------------------------------
if [ "$all" = 1 ]; then
    ids=(s3tests/functional/test_s3.py)
else
    mapfile -t ids < <(sed -e 's/#.*//' -e 's/[[:space:]]*$//' -e 's/^[[:space:]]*//' "$subset_file" | grep -v '^$')
    if [ "${#ids[@]}" -eq 0 ]; then echo "s3-tests: $subset_file lists no test" >&2; exit 2; fi
fi
echo "s3-tests: tydfs $bin_src; gateway http://127.0.0.1:$s3_port; $([ "$all" = 1 ] && echo "all of test_s3.py" || echo "${#ids[@]} tests from ${subset_file#"$repo"/}")"

jobs=(-n "${S3TESTS_JOBS:-2}")
if [ "${S3TESTS_JOBS:-2}" = 1 ]; then jobs=(-p no:xdist); fi
# Each xdist worker draws its own bucket prefix, so their setups and cleanups do not meet.
# In the background and waited for, so that a signal reaches the traps at once.
(cd "$suite" && COLUMNS=200 S3TEST_CONF="$work/s3tests.conf" exec setsid "$venv/bin/python" -m pytest -q \
    -p no:cacheprovider "${jobs[@]}" --timeout "${S3TESTS_TIMEOUT:-120}" -rfE \
    --junitxml="$work/junit.xml" ${extra[@]+"${extra[@]}"} "${ids[@]}") >"$work/pytest.log" 2>&1 &
pytest_pid=$!
pytest_rc=0
wait "$pytest_pid" || pytest_rc=$?
pytest_pid=""
[ -n "${S3TESTS_JUNIT:-}" ] && cp "$work/junit.xml" "$S3TESTS_JUNIT" 2>/dev/null || true

# The summary: pytest's short summary (one line per failure) and its closing line.
awk '/short test summary info/ { on = 1 } on' "$work/pytest.log"
if ! grep -q "short test summary info" "$work/pytest.log"; then tail -n 30 "$work/pytest.log"; fi

# Counts per test (a test that passes but errors in teardown counts as not passed).
read -r passed total failed errors skipped < <("$venv/bin/python" - "$work/junit.xml" <<'EOF'
import sys, xml.etree.ElementTree as ET
try:
    cases = ET.parse(sys.argv[1]).getroot().iter("testcase")
except Exception:
    print(0, 0, 0, 0, 0); sys.exit()
p = t = f = e = s = 0
for c in cases:
    t += 1
    kinds = {child.tag for child in c}
    if "error" in kinds: e += 1
    elif "failure" in kinds: f += 1
    elif "skipped" in kinds: s += 1
    else: p += 1
print(p, t, f, e, s)
EOF
)
if [ "$all" = 0 ]; then total="${#ids[@]}"; fi
echo "s3-tests: passed $passed of $total (failed $failed, errors $errors, skipped $skipped) in $((SECONDS - started)) s"
if [ "$all" = 1 ]; then
    exit 0
fi
if [ "$pytest_rc" -ne 0 ] || [ "$passed" -ne "$total" ]; then
    echo "s3-tests: FAILED (pytest exit $pytest_rc); S3TESTS_KEEP=1 keeps the full log, the gateway's log and the config" >&2
    exit 1
fi
