#!/usr/bin/env bash
# Builds TYDFS and runs every test: unit tests of the pure core, the SQLite store on a real file,
# integration tests that start real master and datakeeper processes on loopback, the fuzzer
# (scripts/fuzz.sh: schemathesis from docs/openapi.yaml against live servers) and the seeded
# chaos loop (scripts/chaos.py: kills, restarts and pauses under load, then every byte checked).
# TYDFS_BUILD_DIR picks the build folder (default: .build), so CI can keep it outside the clone.
set -euo pipefail
cd "$(dirname "$0")/.."
scratch=(--scratch-path "${TYDFS_BUILD_DIR:-.build}")
# No debug information (-gnone for Swift, -g0 for C: BoringSSL and SQLite are large C sources):
# the tests need none, and a cold build is much shorter without it (CI has 30 minutes).
# (Not --disable-index-store: XCTest's test discovery on Linux reads the index.)
swift build --build-tests "${scratch[@]}" -Xswiftc -gnone -Xcc -g0
# --disable-swift-testing: all tests are XCTest; this keeps the run's closing line XCTest's.
swift test --skip-build --disable-swift-testing "${scratch[@]}" "$@"
# Hostile input from a fuzzer, and 60 s of the seeded chaos loop, against live servers (skipped
# when tests were filtered).
if [ "$#" -eq 0 ]; then
    bin="$(swift build "${scratch[@]}" --show-bin-path)/tydfs"
    # 20 s per signed run (7 s without credentials) and 30 s of chaos keep CI within its 30
    # minutes; the defaults (60 s) or more for a longer look: scripts/fuzz.sh 30 600.
    TYDFS_BIN="$bin" scripts/fuzz.sh 20 20
    python3 scripts/chaos.py --seconds 30 --bin "$bin"
fi
