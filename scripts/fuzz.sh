#!/usr/bin/env bash
# Hostile input: schemathesis (PyPI) generates requests from docs/openapi.yaml, valid and
# invalid, against a live master and datakeeper on loopback:
#   - signed with the cluster secret, through scripts/signing-proxy.py (every route reachable,
#     chunk requests with genuine tokens), and
#   - straight, with no credentials (every route but the open ones must refuse);
# no request may get a 5xx, and no server may crash or hang (each answers /healthz after every
# run, and the proxy turns a hung-up or silent server into a 599). Files stored before the
# fuzzing read back byte-exact afterwards. Ends with a table.
# Usage: scripts/fuzz.sh [MAX_EXAMPLES [SECONDS_PER_RUN]]   (defaults 30 and 60; the runs without
# credentials, which mostly meet the front door, get a third of the time)
# TYDFS_BIN=path uses that binary (scripts/test.sh passes its debug build).
source "$(dirname "$0")/lib.sh"
examples="${1:-30}"
budget="${2:-60}"
# pip may put the command where PATH does not look (a fresh pyenv, --user): ask Python.
schemathesis="$(command -v schemathesis || echo "$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')/schemathesis")"
[ -x "$schemathesis" ] || { echo "fuzz: schemathesis is needed (pip install schemathesis)" >&2; exit 1; }

start_master --heartbeat-timeout 5s
for i in 1 2 3; do start_datakeeper "dk$i" --heartbeat-interval 200ms; done
wait_alive 3

# Files that must survive whatever the fuzzer does.
keep="/keep-$RANDOM$RANDOM"
head -c 300000 /dev/urandom >"$work/keep.bin"
head -c 5000 /dev/urandom >"$work/keep-small.bin"
"$bin" put -q "$work/keep.bin" "$keep/big" >/dev/null
"$bin" put -q "$work/keep-small.bin" "$keep/small" >/dev/null

dk1_address=$("$bin" nodes --json | python3 -c 'import json,sys; print([n["address"] for n in json.load(sys.stdin)["nodes"] if n["id"] == "dk1"][0])')
master_proxy=$((port + 1)); dk_proxy=$((port + 2))
python3 scripts/signing-proxy.py "$master_proxy" "127.0.0.1:$port" "$TYDFS_SECRET_FILE" &
pid_of[master-proxy]=$!
python3 scripts/signing-proxy.py "$dk_proxy" "$dk1_address" "$TYDFS_SECRET_FILE" dk1 &
pid_of[dk-proxy]=$!
sleep 1
# The proxies really open the door: a signed request and a chunk read through them succeed.
kept_chunk=$("$bin" stat "$keep/small" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["chunks"][0]["id"])')
python3 -c 'import sys, urllib.request; [urllib.request.urlopen(url, timeout=10) for url in sys.argv[1:]]' \
    "http://127.0.0.1:$master_proxy/v1/nodes" "http://127.0.0.1:$dk_proxy/v1/chunks/$kept_chunk" \
    || { echo "fuzz: the signing proxies do not get requests through" >&2; exit 1; }

healthy() {
    local address
    # Our own servers only: signed heartbeats from the fuzzer register made-up datakeepers too.
    for address in "127.0.0.1:$port" $("$bin" nodes --json | python3 -c 'import json,sys; print(" ".join(n["address"] for n in json.load(sys.stdin)["nodes"] if n["id"] in ("dk1", "dk2", "dk3")))'); do
        python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=5)' "http://$address/healthz" \
            || { echo "fuzz: $address stopped answering" >&2; return 1; }
    done
    local name
    for name in master dk1 dk2 dk3; do kill -0 "${pid_of[$name]}" 2>/dev/null || { echo "fuzz: $name exited" >&2; return 1; }; done
}

failed=0
declare -a rows=()
run() {  # NAME TAG URL SECONDS
    local name="$1" tag="$2" url="$3" seconds="$4" log="$work/fuzz-$1.log" status=0
    "$schemathesis" run docs/openapi.yaml --url "$url" --include-tag "$tag" --checks not_a_server_error \
        --max-examples "$examples" --max-time "$seconds" --request-timeout 30 --seed 20261129 \
        --suppress-health-check all --no-color >"$log" 2>&1 || status=$?
    local cases operations
    cases=$(grep -Eo '[0-9]+ generated' "$log" | tail -1 | grep -Eo '[0-9]+' || echo "?")
    operations=$(grep -Eo 'Operations:[^0-9]*[0-9]+' "$log" | grep -Eo '[0-9]+$' | tail -1 || echo "?")
    local alive=yes
    healthy || { alive=no; failed=1; }
    if [ "$status" -ne 0 ]; then
        failed=1
        mkdir -p "${TMPDIR:-/tmp}/tydfs-fuzz-failures"
        cp "$log" "${TMPDIR:-/tmp}/tydfs-fuzz-failures/"
        echo "fuzz: $name failed; its log is in ${TMPDIR:-/tmp}/tydfs-fuzz-failures/$(basename "$log")" >&2
        grep -A12 -E "^_+ |Server error|[0-9]{3} " "$log" | head -80 >&2
    fi
    rows+=("$(printf '%-28s %10s %10s %8s %6s' "$name" "$operations" "$cases" "$([ $status -eq 0 ] && echo pass || echo FAIL)" "$alive")")
}
run "master, signed" master "http://127.0.0.1:$master_proxy" "$budget"
run "master, no credentials" master "http://127.0.0.1:$port" "$((budget / 3))"
run "datakeeper, with tokens" datakeeper "http://127.0.0.1:$dk_proxy" "$budget"
run "datakeeper, no token" datakeeper "http://$dk1_address" "$((budget / 3))"

lost=0
for name in big small; do
    src="$work/keep.bin"; [ "$name" = small ] && src="$work/keep-small.bin"
    "$bin" get "$keep/$name" - 2>/dev/null | cmp -s - "$src" || { lost=1; echo "fuzz: $keep/$name does not read back" >&2; }
done
[ "$lost" -eq 0 ] || failed=1

echo
printf '%-28s %10s %10s %8s %6s\n' "RUN" "OPERATIONS" "CASES" "RESULT" "ALIVE"
for row in "${rows[@]}"; do echo "$row"; done
echo "files stored before the fuzzing that no longer read back: $lost"
exit "$failed"
