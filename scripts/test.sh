#!/usr/bin/env bash
# Builds TYDFS and runs every test: unit tests of the pure core, the SQLite store on a real file,
# integration tests that start real master and datakeeper processes on loopback, and the
# fuzzer (scripts/fuzz.sh: schemathesis from docs/openapi.yaml against live servers).
# TYDFS_BUILD_DIR picks the build folder (default: .build), so CI can keep it outside the clone.
set -euo pipefail
cd "$(dirname "$0")/.."
scratch=(--scratch-path "${TYDFS_BUILD_DIR:-.build}")
swift build --build-tests "${scratch[@]}"
# --disable-swift-testing: all tests are XCTest; this keeps the run's closing line XCTest's.
swift test --skip-build --disable-swift-testing "${scratch[@]}" "$@"
# Hostile input from a fuzzer, against live servers (skipped when tests were filtered).
if [ "$#" -eq 0 ]; then
    TYDFS_BIN="$(swift build "${scratch[@]}" --show-bin-path)/tydfs" scripts/fuzz.sh
fi
