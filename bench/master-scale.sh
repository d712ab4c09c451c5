#!/usr/bin/env bash
# The master holding many files: how long it takes to load them at start, its memory (bytes per
# file), and how fast stat and ls answer from its in-memory namespace.
# usage: bench/master-scale.sh [FILES [FLAT]]   (default 1,000,000 files, FLAT = 100,000 of them
# in one folder, /flat; `bench/master-scale.sh 1500000 1500000` lists a folder of 1.5 M entries)
# The metadata is written straight into the master's SQLite file by a generator, as a real
# master would have stored it (one chunk per file, three replicas), then the master is started on it.
source "$(dirname "$0")/../scripts/lib.sh"
files="${1:-1000000}"
flat="${2:-$(( files < 100000 ? files : 100000 ))}"

# An empty master creates the schema; the generator fills it.
start_master
kill "${pid_of[master]}"; wait "${pid_of[master]}" 2>/dev/null || true
started=$(now)
python3 - "$work/master/metadata.sqlite" "$files" "$flat" <<'PY'
import os, sqlite3, sys
path, files, flat = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
db = sqlite3.connect(path)
db.execute("PRAGMA journal_mode=WAL")
def rows():
    for i in range(files):
        name = f"/flat/f{i:07d}" if i < flat else f"/scale/d{(i - flat) // 1000:05d}/f{i:07d}"
        yield name, os.urandom(16).hex()
batch_files, batch_chunks, batch_replicas = [], [], []
def flush():
    db.executemany("INSERT INTO files VALUES (?, 4096, 1764000000000, 12345, 67108864, 3, NULL, NULL)", batch_files)
    db.executemany("INSERT INTO chunks VALUES (?, ?, 0, 4096, 12345)", batch_chunks)
    db.executemany("INSERT INTO replicas VALUES (?, ?)", batch_replicas)
    batch_files.clear(); batch_chunks.clear(); batch_replicas.clear()
for name, chunk in rows():
    batch_files.append((name,))
    batch_chunks.append((chunk, name))
    batch_replicas.extend([(chunk, "dk1"), (chunk, "dk2"), (chunk, "dk3")])
    if len(batch_files) >= 50000: flush()
flush()
db.commit()
db.close()
PY
echo "generated $files files in $(elapsed "$started") s ($(du -sh "$work/master" | cut -f1) on disk)"

: >"$work/master.log"
started=$(now)
start_master
load=$(elapsed "$started")
pid=${pid_of[master]}
rss_kib=$(awk '/VmRSS/ {print $2}' /proc/$pid/status)
hwm_kib=$(awk '/VmHWM/ {print $2}' /proc/$pid/status)
cpu=$(awk '{printf "%.1f", ($14 + $15) / 100}' /proc/$pid/stat)
grep -o 'namespace loaded.*' "$work/master.log" | head -1
echo "start-up with $files files: ${load} s to listening, ${cpu} CPU-s"
echo "master RSS: $((rss_kib / 1024)) MiB now, $((hwm_kib / 1024)) MiB peak; $((rss_kib * 1024 / files)) bytes per file"

started=$(now)
entries=$(( $("$bin" ls /flat --json | grep -c '"path"') - 1 ))  # less the folder's own path
echo "ls /flat: $entries entries in $(elapsed "$started") s (one CLI process, JSON)"
started=$(now)
"$bin" ls /flat >/dev/null
echo "ls /flat as text: $(elapsed "$started") s"
started=$(now)
for i in $(seq 1 50); do "$bin" stat "/flat/f$(printf %07d $((i * 7)))" >/dev/null; done
echo "50 stat calls (one process each): $(elapsed "$started") s"
rss_kib=$(awk '/VmRSS/ {print $2}' /proc/$pid/status)
echo "master RSS after ls and stat: $((rss_kib / 1024)) MiB"
