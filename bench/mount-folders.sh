#!/usr/bin/env bash
# A big folder through `tydfs mount`, on a fresh local cluster (release build; a master and 3
# datakeepers as separate processes; replication 3): FILES empty files put into one folder with
# `tydfs put -r`, beside 3 folders of 10 files, then, through the mount:
#   - `stat` of the big folder, 5 times, each after the kernel's attribute cache (1 s) expired:
#     what every program walking a path through the folder pays once a second;
#   - `ls -l` of the folder above it (a getattr of each folder in it);
#   - `ls` of the big folder (every entry, in readdir pages), and `ls -l` of it (and each entry's
#     attributes);
# beside `tydfs ls` of the big folder, with the CPU seconds of the mount's server and the master.
# Usage: bench/mount-folders.sh [FILES]   (default 20000). TYDFS_BIN=path uses that binary.
source "$(dirname "$0")/../scripts/lib.sh"
files="${1:-20000}"

start_master
for i in 1 2 3; do start_datakeeper "dk$i"; done
wait_alive 3
mkdir -p "$work/local/big" "$work/local/small-1" "$work/local/small-2" "$work/local/small-3"
(cd "$work/local/big" && seq -f "file-%06g" 1 "$files" | xargs touch)
for i in 1 2 3; do (cd "$work/local/small-$i" && seq -f "f-%g" 1 10 | xargs touch); done
timed put-r "$bin" put -r -q "$work/local" /tree
start_mount "$work/mnt"
servers=(mount master)

echo "== through the mount"
ls "$work/mnt/tree" >/dev/null
for i in 1 2 3 4 5; do
    sleep 1.1
    timed "stat-$i" stat "$work/mnt/tree/big"
done
sleep 1.1
timed ls-l-above ls -l "$work/mnt/tree"
timed ls-big sh -c "ls -f '$work/mnt/tree/big' | wc -l"
sleep 1.1
timed ls-l-big sh -c "ls -l '$work/mnt/tree/big' | wc -l"
timed tydfs-ls sh -c "'$bin' ls /tree/big | wc -l"
listed=$(ls -f "$work/mnt/tree/big" | grep -c '^file-' || true)
[ "$listed" = "$files" ] || { echo "FAILED: the mount listed $listed of $files files"; exit 1; }
echo "== $files files in one folder: stat of it through the mount, 5 times: $(for i in 1 2 3 4 5; do printf '%s s ' "$(wall "stat-$i")"; done)"
echo "   ls -l of the folder above: $(wall ls-l-above) s; ls of it: $(wall ls-big) s; ls -l of it: $(wall ls-l-big) s; tydfs ls of it: $(wall tydfs-ls) s"
