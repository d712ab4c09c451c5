#!/usr/bin/env bash
# Builds TYDFS and runs every test: unit tests of the pure core, the SQLite store on a real file,
# and integration tests that start real master and datakeeper processes on loopback.
# TYDFS_BUILD_DIR picks the build folder (default: .build), so CI can keep it outside the clone.
set -euo pipefail
cd "$(dirname "$0")/.."
scratch=(--scratch-path "${TYDFS_BUILD_DIR:-.build}")
swift build --build-tests "${scratch[@]}"
# --disable-swift-testing: all tests are XCTest; this keeps the run's closing line XCTest's.
swift test --skip-build --disable-swift-testing "${scratch[@]}" "$@"
