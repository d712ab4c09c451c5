#!/usr/bin/env bash
# Several masters on PostgreSQL (issue 17), release build, everything on loopback, with a private
# PostgreSQL server started here (initdb in a temporary folder, run as the postgres user):
#   1. `tydfs bench` (small files: put, get, stat, rm) against one master on SQLite, then the same
#      master restarted on PostgreSQL, same datakeepers, same run; with the machine's reference
#      (`cp -r` of the same number of 4 KiB files + `sync`) before and after;
#   2. failover time, RUNS times: three masters on PostgreSQL, four datakeepers, a client putting
#      100 KB files in a loop; the leader is killed with kill -9, and the time from the kill until
#      the first put that completes after it is printed. The killed master restarts as a standby
#      before the next run.
# Usage: bench/masters.sh [BENCH_FILES [RUNS]]   (defaults 2000 5; about 3 minutes)
# TYDFS_BIN=path uses that binary instead of building one (see scripts/lib.sh).
source "$(dirname "$0")/../scripts/lib.sh"
bench_files="${1:-2000}"
runs="${2:-5}"

# -- a private PostgreSQL server
pgbin="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)"
pgport=$((port + 10))
chmod 755 "$work"   # mktemp makes it 0700: the postgres user must reach its folder
mkdir -p "$work/pg/sockets"
as_postgres=()
if [ "$(id -u)" = 0 ]; then
    chown -R postgres:postgres "$work/pg"
    as_postgres=(setpriv --reuid=postgres --regid=postgres --init-groups --)
fi
(cd "$work/pg" && "${as_postgres[@]}" "$pgbin/initdb" -D "$work/pg/data" -U tydfs -A trust -E UTF8 >/dev/null)
(cd "$work/pg" && exec "${as_postgres[@]}" "$pgbin/postgres" -D "$work/pg/data" -p "$pgport" -k "$work/pg/sockets" \
    -c listen_addresses=127.0.0.1 >"$work/pg.log" 2>&1) &
pid_of[postgres]=$!
until "$pgbin/pg_isready" -q -h 127.0.0.1 -p "$pgport"; do sleep 0.1; done
psql_run() { "$pgbin/psql" -h 127.0.0.1 -p "$pgport" -U tydfs -d postgres -Atq -c "$1"; }
psql_run "CREATE DATABASE small" && psql_run "CREATE DATABASE failover"
pg_url() { echo "postgres://tydfs@127.0.0.1:$pgport/$1?sslmode=disable"; }

reference() {
    rm -rf "$work/tree" "$work/cp-copy"; mkdir -p "$work/tree"
    head -c "$((bench_files * 4096))" /dev/urandom | split -b 4096 -a 6 -d - "$work/tree/f"
    sync
    local t; t=$(now)
    cp -r "$work/tree" "$work/cp-copy"; sync
    local s; s=$(elapsed "$t")
    echo "reference ($1): cp -r of $bench_files files of 4 KiB + sync: ${s} s ($(awk -v n="$bench_files" -v s="$s" 'BEGIN { printf "%.0f", n / s }') files/s)"
}

echo "== several masters: release build, replication 3, $(nproc) cores, PostgreSQL $(basename "$(dirname "$pgbin")") =="
echo
echo "-- 1. tydfs bench --files $bench_files --size 4KiB --concurrency 16: SQLite, then PostgreSQL"
reference before
start_master
for i in 1 2 3; do start_datakeeper "dk$i"; done
wait_alive 3
timed bench-sqlite "$bin" bench --files "$bench_files" --size 4KiB --concurrency 16
echo "SQLite:"; cat "$work/bench-sqlite.out"
kill "${pid_of[master]}"; wait "${pid_of[master]}" 2>/dev/null || true
: >"$work/master.log"
start_master --metadata "$(pg_url small)"
until [ "$("$bin" masters --json 2>/dev/null | grep -c '"leader"' || true)" -ge 1 ]; do sleep 0.2; done
wait_alive 3
timed bench-postgres "$bin" bench --files "$bench_files" --size 4KiB --concurrency 16
echo "PostgreSQL:"; cat "$work/bench-postgres.out"
reference after
for server in master dk1 dk2 dk3; do kill "${pid_of[$server]}"; wait "${pid_of[$server]}" 2>/dev/null || true; unset "pid_of[$server]"; done

echo
echo "-- 2. failover: 3 masters on PostgreSQL, 4 datakeepers, a put loop; the leader killed with kill -9, $runs times"
masters=()
for i in 1 2 3; do
    mkdir -p "$work/m$i"
    cp "$work/master/access-keys.json" "$work/m$i/"
    masters+=("http://127.0.0.1:$((port + i))")
done
list="$(IFS=,; echo "${masters[*]}")"
export TYDFS_MASTER="$list"
start_standby() {
    local i="$1"
    "$bin" master --listen "127.0.0.1:$((port + i))" --data "$work/m$i" --metadata "$(pg_url failover)" \
        --secret-file "$work/master/cluster.secret" >>"$work/m$i.log" 2>&1 &
    pid_of[m$i]=$!
}
for i in 1 2 3; do start_standby "$i"; done
for i in 1 2 3 4; do start_datakeeper "fdk$i" --master "$list" --heartbeat-interval 200ms; done
wait_alive 4
head -c 100000 /dev/urandom >"$work/f"
leader_index() {
    "$bin" masters --json 2>/dev/null | python3 -c '
import json, sys
for m in json.load(sys.stdin)["masters"]:
    if m["role"] == "leader": print(m["url"].rsplit(":", 1)[1])' | head -1
}
(
    n=0
    while :; do
        if "$bin" put -q "$work/f" "/loop/f$n" 2>/dev/null; then echo "ok $(now)"; else echo "fail $(now)"; fi
        n=$((n + 1))
    done
) >"$work/loop.log" &
pid_of[loop]=$!
times=()
for run in $(seq 1 "$runs"); do
    sleep 3
    leader_port="$(leader_index)"
    i=$((leader_port - port))
    killed=$(now)
    kill -9 "${pid_of[m$i]}"; wait "${pid_of[m$i]}" 2>/dev/null || true
    until awk -v k="$killed" '$1 == "ok" && $2 > k { found = 1 } END { exit !found }' "$work/loop.log"; do sleep 0.05; done
    first=$(awk -v k="$killed" '$1 == "ok" && $2 > k { print $2; exit }' "$work/loop.log")
    t=$(awk -v a="$killed" -v b="$first" 'BEGIN { printf "%.2f", b - a }')
    times+=("$t")
    failed=$(awk -v k="$killed" -v f="$first" '$1 == "fail" && $2 > k && $2 <= f' "$work/loop.log" | wc -l)
    echo "run $run: killed the leader m$i; first put completed ${t} s later ($failed puts failed in between)"
    start_standby "$i"
done
kill "${pid_of[loop]}"; wait "${pid_of[loop]}" 2>/dev/null || true; unset "pid_of[loop]"
printf '%s\n' "${times[@]}" | sort -n | awk '{ a[NR] = $1; s += $1 } END { printf "failover, kill -9 to first completed put, %d runs: min %.2f s, median %.2f s, max %.2f s, mean %.2f s\n", NR, a[1], a[int((NR + 1) / 2)], a[NR], s / NR }'
total=$(grep -c '^ok' "$work/loop.log"); fails=$(grep -c '^fail' "$work/loop.log" || true)
echo "put loop: $total puts acknowledged, $fails failed"
bad=0
for n in $(seq 0 $((total + fails))); do
    if "$bin" get -q "/loop/f$n" "$work/back" 2>/dev/null; then cmp -s "$work/f" "$work/back" || bad=$((bad + 1)); fi
done
echo "every file the loop stored reads back: $([ "$bad" = 0 ] && echo yes || echo "NO, $bad differ")"
