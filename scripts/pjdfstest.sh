#!/usr/bin/env bash
# pjdfstest (POSIX file-system conformance, archive in ../shared/vendor) against `tydfs mount` on
# a fresh local cluster (a master and 3 datakeepers, replication 3), for the categories issue 18
# names: mkdir, rmdir, unlink, rename, open, truncate, ftruncate. Prints, per category, the
# subtests passed and run, and the failures grouped by the call and what it got, so a change
# shows what it fixed. Needs autoconf, automake and gcc (Debian), and root (the tests switch
# users). Takes about 3 minutes.
# Usage: scripts/pjdfstest.sh [CATEGORY...]   TYDFS_BIN=path uses that binary (default: a release build).
source "$(dirname "$0")/lib.sh"
categories=("$@")
[ "${#categories[@]}" -gt 0 ] || categories=(mkdir rmdir unlink rename open truncate ftruncate)
archive="$(ls "$PWD"/../shared/vendor/pjdfstest-*.tar.gz | head -1)"

mkdir -p "$work/pjdfstest"
tar -xzf "$archive" -C "$work/pjdfstest" --strip-components=1
(cd "$work/pjdfstest" && autoreconf -ifs >/dev/null 2>&1 && ./configure >/dev/null && make pjdfstest >/dev/null)

start_master
for i in 1 2 3; do start_datakeeper "dk$i"; done
wait_alive 3
# --allow-other: the tests switch to other users, whom a mount refuses without it.
start_mount "$work/mnt" --allow-other

mkdir "$work/mnt/run"
total_passed=0 total_run=0
for category in "${categories[@]}"; do
    (cd "$work/mnt/run" && prove -v -r "$work/pjdfstest/tests/$category" >"$work/$category.log" 2>&1) || true
    run=$(grep -cE '^(not )?ok [0-9]+' "$work/$category.log" || true)
    failed=$(grep -cE '^not ok [0-9]+' "$work/$category.log" || true)
    printf '%-10s %5d of %5d passed\n' "$category" $((run - failed)) "$run"
    total_passed=$((total_passed + run - failed)); total_run=$((total_run + run))
    grep -E '^not ok' "$work/$category.log" >>"$work/failures" || true
done
printf '%-10s %5d of %5d passed\n' "all" "$total_passed" "$total_run"
echo "== failures by call and result (most frequent first)"
[ -s "$work/failures" ] && sed -E "s/^not ok [0-9]+ - tried '//; s/pjdfstest_[0-9a-f]+/@/g; s/[0-9a-f]{64,}[^ ']*/@/g; s/@(\/(@|test))*/PATH/g; s/ [0-9]+( |'|$)/ #\1/g; s/^-u # -g # /as another user: /; s/', expected/: expected/" "$work/failures" \
    | sort | uniq -c | sort -rn | head -40
