# Shared by the benchmark scripts: a release build, a cluster of separate processes on loopback,
# and cleanup of exactly the processes started here.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# TYDFS_BIN=path uses an already built binary instead of building one here.
if [ -z "${TYDFS_BIN:-}" ]; then
    swift build -c release --product tydfs >/dev/null
fi
bin="${TYDFS_BIN:-$PWD/.build/release/tydfs}"
work="$(mktemp -d "${TMPDIR:-/tmp}/tydfs-bench.XXXXXX")"
declare -A pid_of=()
mounted_at=""
cleanup() {
    # A mount first: its server is among the processes ended below.
    if [ -n "$mounted_at" ]; then umount -l "$mounted_at" 2>/dev/null || true; fi
    # SIGCONT first: a process left stopped (bench/run.sh stops one) acts on SIGTERM only once continued.
    for pid in "${pid_of[@]}"; do kill -CONT "$pid" 2>/dev/null || true; kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
port=$((20000 + RANDOM % 12000))  # below the ephemeral range (32768-60999), where clients and :0 listeners land
export TYDFS_MASTER="http://127.0.0.1:$port"

now() { echo "$EPOCHREALTIME"; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }

# start_master [FLAGS...]
start_master() {
    "$bin" master --listen "127.0.0.1:$port" --data "$work/master" "$@" >>"$work/master.log" 2>&1 &
    pid_of[master]=$!
    # Our own line, not Hummingbird's "Server started and listening", which comes before the
    # admin config is written (waiting for that one raced, and then every command was refused).
    until grep -qs "tydfs master listening" "$work/master.log"; do
        kill -0 "${pid_of[master]}" 2>/dev/null || { echo "bench: the master exited:" >&2; tail -5 "$work/master.log" >&2; exit 1; }
        sleep 0.1
    done
    # The cluster is locked: datakeepers need the master's secret, clients its admin key (both
    # made on its first start). Set only when present, so an older binary can be measured too.
    if [ -f "$work/master/cluster.secret" ]; then export TYDFS_SECRET_FILE="$work/master/cluster.secret"; fi
    if [ -f "$work/master/admin-client.conf" ]; then export TYDFS_CONFIG="$work/master/admin-client.conf"; fi
}

# start_datakeeper ID [FLAGS...]
start_datakeeper() {
    local id="$1"; shift
    "$bin" datakeeper --listen 127.0.0.1:0 --data "$work/$id" --id "$id" "$@" >>"$work/$id.log" 2>&1 &
    pid_of[$id]=$!
}

alive_count() { "$bin" nodes --json 2>/dev/null | grep -c '"alive" : true' || true; }
# wait_alive N: waits for N live datakeepers; after 60 s says why it cannot see them, and fails.
wait_alive() {
    local deadline=$((SECONDS + 60))
    until [ "$(alive_count)" = "$1" ]; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            echo "bench: $1 datakeepers not alive after 60 s; \`tydfs nodes\` says:" >&2
            "$bin" nodes >&2 || true
            exit 1
        fi
        sleep 0.2
    done
}

# CPU accounting, for the benchmarks: ticks per second, and the CPU seconds (user + system) a
# server started here has used so far.
ticks="$(getconf CLK_TCK)"
cpu_of() { awk -v t="$ticks" '{ printf "%.2f", ($14 + $15) / t }' "/proc/${pid_of[$1]}/stat"; }
# The servers `timed` reports on (a script may set its own list).
servers=(master dk1 dk2 dk3)
declare -A cpu_before=() disk_before=()
# disk_read_of NAME: bytes the process NAME has had read from the disk (not the page cache);
# 0 where the kernel does not count them.
disk_read_of() { awk '/^read_bytes/ { print $2 }' "/proc/${pid_of[$1]}/io" 2>/dev/null || echo 0; }
servers_mark() {
    local server
    for server in "${servers[@]}"; do
        cpu_before[$server]=$(cpu_of "$server")
        [[ $server == dk* ]] && disk_before[$server]=$(disk_read_of "$server")
    done
    return 0
}
# datakeepers_disk_reads: MiB each datakeeper among the servers read from the disk since
# `servers_mark` ("none" without datakeepers).
datakeepers_disk_reads() {
    local line="" server now
    for server in "${servers[@]}"; do
        [[ $server == dk* ]] || continue
        now=$(disk_read_of "$server")
        line+="$server $(( (${now:-0} - ${disk_before[$server]:-0}) >> 20 ))  "
    done
    echo "${line:-none}"
}
servers_used() {
    local line="" server
    for server in "${servers[@]}"; do
        line+="$server $(awk -v a="${cpu_before[$server]}" -v b="$(cpu_of "$server")" 'BEGIN { printf "%.2f", b - a }')  "
    done
    echo "$line"
}
# timed NAME COMMAND...: runs a client command, keeps its output in $work/NAME.out and its wall
# time in $work/NAME.wall, and prints the wall time and the CPU seconds of it and of each server.
timed() {
    local name="$1"; shift
    servers_mark
    local t; t=$(now)
    if ! /usr/bin/time -f "%U %S" -o "$work/$name.time" "$@" >"$work/$name.out" 2>"$work/$name.err"; then
        echo "FAILED: $*"; cat "$work/$name.err"; exit 1
    fi
    local wall; wall=$(elapsed "$t")
    local client; client=$(awk 'END { printf "%.2f", $1 + $2 }' "$work/$name.time")
    printf '%-12s wall %6.2f s   CPU s: client %s  %s  disk reads MiB: %s\n' "$name" "$wall" "$client" "$(servers_used)" "$(datakeepers_disk_reads)"
    echo "$wall" >"$work/$name.wall"
}

# wall NAME: the wall time `timed NAME …` took; ratio A B: A's wall time ÷ B's.
wall() { cat "$work/$1.wall"; }
ratio() { awk -v a="$(wall "$1")" -v b="$(wall "$2")" 'BEGIN { printf "%.2f", a / b }'; }
# reference LABEL: the machine's own limit, cp + sync of $work/big, printed and kept in
# $work/reference-LABEL.wall (run it before and after: the disk here swings 2-4x).
reference() {
    rm -f "$work/copy"; sync
    local t; t=$(now)
    cp "$work/big" "$work/copy"; sync
    local took; took=$(elapsed "$t")
    echo "reference ($1): cp + sync of $(($(stat -c %s "$work/big") >> 20)) MiB: $took s"
    echo "$took" >"$work/reference-$1.wall"
    rm -f "$work/copy"
}

# start_s3_gateway: serves `tydfs s3` in front of the master (as server `s3`) on $port + 1, waits
# until it listens, and exports $endpoint and the admin's key for aws and boto3.
start_s3_gateway() {
    "$bin" s3 --listen "127.0.0.1:$((port + 1))" --master "$TYDFS_MASTER" --secret-file "$TYDFS_SECRET_FILE" >>"$work/s3.log" 2>&1 &
    pid_of[s3]=$!
    until grep -qs "gateway listening" "$work/s3.log"; do sleep 0.1; done
    endpoint="http://127.0.0.1:$((port + 1))"
    export AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_DEFAULT_REGION=us-east-1
    AWS_ACCESS_KEY_ID=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['access-key-id'])" "$TYDFS_CONFIG")
    AWS_SECRET_ACCESS_KEY=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['secret-access-key'])" "$TYDFS_CONFIG")
}

# start_mount DIR [FLAGS...]: serves `tydfs mount DIR` in the foreground (as server `mount`, ended
# and lazily unmounted on exit) and waits until it is mounted.
start_mount() {
    mkdir -p "$1"
    "$bin" mount "$1" --foreground --cache-dir "$work/mount-cache" "${@:2}" >>"$work/mount.log" 2>&1 &
    pid_of[mount]=$!
    until grep -qs "^mounted" "$work/mount.log"; do
        kill -0 "${pid_of[mount]}" 2>/dev/null || { echo "FAILED: tydfs mount exited"; cat "$work/mount.log"; exit 1; }
        sleep 0.1
    done
    mounted_at="$1"
}
