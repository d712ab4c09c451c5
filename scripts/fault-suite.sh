#!/usr/bin/env bash
# The fault suite in one command: the fault-scenario tests (a datakeeper and the master cut off
# on hosts of their own, one behind a slow lossy link, a full disk, stalled and hung peers, kill -9s, bit rot, hostile and
# unauthorised requests), the seeded chaos loop (scripts/chaos.py) and the fuzzer
# (scripts/fuzz.sh), then one table: scenarios run and passed, operations under load, faults
# injected, bad inputs tried, bytes lost (must be 0).
# Usage: scripts/fault-suite.sh [--soak SECONDS] [--seed N]   (default 60 s of chaos: about 10 minutes in all)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=60; seed=()
while [ "$#" -gt 0 ]; do
    case "$1" in
        --soak) seconds="${2:?--soak needs seconds}"; shift 2 ;;
        --seed) seed=(--seed "${2:?--seed needs a number}"); shift 2 ;;
        *) echo "usage: scripts/fault-suite.sh [--soak SECONDS] [--seed N]" >&2; exit 64 ;;
    esac
done
scratch=(--scratch-path "${TYDFS_BUILD_DIR:-.build}")
swift build --build-tests "${scratch[@]}" >/dev/null
bin="$(swift build "${scratch[@]}" --show-bin-path)/tydfs"
logs="$(mktemp -d "${TMPDIR:-/tmp}/tydfs-fault-suite.XXXXXX")"
status=0

echo "fault suite: logs in $logs"
swift test --skip-build --disable-swift-testing "${scratch[@]}" \
    --filter 'PartitionTests|SlowLinkTests|FullDiskTests|StalledPeerTests|HungDataKeeperTests|FailureTests|SelfHealingTests|SecurityTests|BadInputTests|HostileWireTests|LargeRemoveTests' \
    >"$logs/scenarios.log" 2>&1 || status=1
python3 scripts/chaos.py --seconds "$seconds" --bin "$bin" "${seed[@]}" >"$logs/chaos.log" 2>&1 || status=1
TYDFS_BIN="$bin" scripts/fuzz.sh >"$logs/fuzz.log" 2>&1 || status=1

passed=$(grep -cE "^Test Case '.*' passed" "$logs/scenarios.log" || true)
failed=$(grep -cE "^Test Case '.*' failed" "$logs/scenarios.log" || true)
skipped=$(grep -cE "^Test Case '.*' skipped" "$logs/scenarios.log" || true)
# A line of chaos.py's summary: its label, padded to 34 characters, then the value.
field() { awk -v key="$1" 'index($0, key) == 1 { print substr($0, 35); found = 1 } END { if (!found) print "?" }' "$logs/chaos.log"; }
cases=$(awk '/^(master|datakeeper),/ { n += $(NF-2) } END { print n + 0 }' "$logs/fuzz.log")
lost_chaos=$(field "files lost or wrong"); lost_fuzz=$(grep -Eo 'no longer read back: [0-9]+' "$logs/fuzz.log" | grep -Eo '[0-9]+$' || echo "?")

echo
printf '%-28s %s\n' "scenario tests" "$((passed + failed + skipped)) run, $passed passed, $failed failed, $skipped skipped (see scenarios.log)"
printf '%-28s %s\n' "chaos seed" "$(field "seed")"
printf '%-28s %s\n' "operations under load" "$(field "operations (put/overwrite/get/rm)")"
printf '%-28s %s\n' "faults injected" "$(field "faults injected")"
printf '%-28s %s\n' "replication converged" "$(field "replication converged")"
printf '%-28s %s\n' "bad inputs tried" "$cases generated requests (fuzz.log), plus the hostile cases of BadInputTests, HostileWireTests and SecurityTests"
printf '%-28s %s\n' "files lost or wrong" "chaos $lost_chaos, fuzz $lost_fuzz (must be 0)"
grep -E "^PROBLEM" "$logs/chaos.log" || true
[ "$status" -eq 0 ] && echo "fault suite: PASSED" || echo "fault suite: FAILED (see $logs)"
exit "$status"
