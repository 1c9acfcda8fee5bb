#!/usr/bin/env bash
# Signaling benchmarks: Duet against a minimal relay and PeerServer, driven by crates/loadgen.
#
#   bench/run.sh [SCENARIO...]     (default: throughput latency burst idle concurrency)
#
# Scenarios (each load phase is bounded: --duration seconds plus warm-up and drain):
#   throughput   closed loop, 1,000 connections: Duet, minimal relay, PeerServer
#   latency      open loop 10,000 msg/s, 1,000 connections: Duet, minimal relay, PeerServer
#   burst        open loop with 50 concurrent logins during the measured window (Duet, with
#                the default DUET_HASH_CONCURRENCY=2 and with 1)
#   idle         idle authenticated connections: server RSS at 10k and MAX_CONNS (Duet, minimal)
#   concurrency  MAX_CONNS connections, 1,000 of them active at 10,000 msg/s (Duet, minimal)
#   malloc       the idle runs again with GLIBC_TUNABLES=$TUNABLES
#   presence     N distinct users connecting: the O(N^2) `online` broadcast during ramp-up
#   relay        the workload where Duet was weakest (#16): 200 pairs, closed loop at 1 and 8
#                frames in flight, the seed's envelope (with its own `from`, no `call_id`) and
#                Duet's; open loop at 10,000 msg/s; Duet, minimal relay, PeerServer side by side
#   everyone     2,000 idle authenticated connections of 2,000 users who all see each other
#   contacts     #15: the presence ramp-up of CONTACTS_USERS (10,000) users with CONTACTS_EACH (20)
#                contacts each, presence scoped to contacts (the default), beside the same users
#                who all see each other (DUET_PRESENCE=everyone), in one run
#   instances100k  #17: 100,000 connections held at once across 6 instances (6 generators),
#                memory per instance, then an open loop at 10,000 msg/s beside them
#   instances    #17: the relay's pair workload (PAIRS pairs, closed loop at 1 and 8 in flight)
#                on 1 instance (without and with Redis), 2 and 4 instances sharing one SQLite
#                file and a private redis-server, pairs local (both ends on one instance) and
#                cross (ends on two instances); then open loop at OPEN_RATES msg/s with half
#                the pairs local and half cross, latency of each kind in the same run
#
# Servers listen on 127.0.0.1 only and are killed on exit, error or interrupt.
# Results: one JSON file per run in bench/results/<UTC stamp>/, plus a log.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

SCENARIOS=("$@")
[ ${#SCENARIOS[@]} -gt 0 ] || SCENARIOS=(throughput latency burst idle concurrency)
DURATION=${DURATION:-10}
# The box is shared with other builds: give the measured processes priority for their short runs.
NICE=${NICE:--5}
# PIN=1: the server on CPU 0, the generator (one worker thread) on CPU 1.
if [ -n "${PIN:-}" ]; then
    SERVER_CPU=(taskset -c 0); GEN_CPU=(taskset -c 1); GEN_ARGS=(--threads 1); SUFFIX=-pinned
else
    SERVER_CPU=(); GEN_CPU=(); GEN_ARGS=(); SUFFIX=
fi
OUT=${OUT:-bench/results/$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$OUT"
LOG="$OUT/run.log"

if [ -z "${SKIP_BUILD:-}" ]; then
    echo "building release binaries" | tee -a "$LOG"
    cargo build --release -p server -p loadgen --bins 2>&1 | tail -n 2 | tee -a "$LOG"
fi
DUET=$ROOT/target/release/duet
LOADGEN=$ROOT/target/release/loadgen
MINIMAL=$ROOT/target/release/minimal-relay
PEERJS=$ROOT/bench/peerserver/node_modules/peer/dist/bin/peerjs.js
if [ ! -f "$PEERJS" ]; then
    (cd bench/peerserver && npm ci --no-audit --no-fund) >>"$LOG" 2>&1
fi

# Room for 100k+ sockets on each side (root may raise the hard limit).
ulimit -Hn 1048576 2>/dev/null || true
ulimit -n "$(ulimit -Hn)"
# One process can hold at most this many sockets (the server and the generator alike).
MAX_CONNS=${MAX_CONNS:-$(( $(ulimit -Hn) - 500 ))}

SERVER_PID=""
SERVER_PIDS=()
REDIS_PID=""
DATA_DIRS=()
cleanup() {
    stop_server
    stop_instances
    stop_redis
    for dir in "${DATA_DIRS[@]}"; do rm -rf "$dir"; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

stop_server() {
    if [ -n "$SERVER_PID" ]; then
        kill "$SERVER_PID" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
        SERVER_PID=""
    fi
}

# stop_pid PID: TERM, up to 5 s, then KILL; by process id only.
stop_pid() {
    kill "$1" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}

# port_free PORT: fails when something (another checkout's server) already listens there, so
# that wait_port cannot mistake it for ours.
port_free() {
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then
        echo "port $1 is taken: set BASE_PORT to another range" | tee -a "$LOG"
        return 1
    fi
}

# start_redis PORT: a private redis-server on loopback, nothing saved to disk.
start_redis() {
    local dir; dir=$(mktemp -d); DATA_DIRS+=("$dir")
    port_free "$1"
    "${SERVER_CPU[@]}" nice -n "$NICE" redis-server --bind 127.0.0.1 --port "$1" --save '' \
        --appendonly no --dir "$dir" >>"$OUT/redis-$1.log" 2>&1 &
    REDIS_PID=$!
    wait_port "$1"
}

stop_redis() {
    if [ -n "$REDIS_PID" ]; then stop_pid "$REDIS_PID"; REDIS_PID=""; fi
}

# start_instances N FIRST_PORT [VAR=value ...]: N Duet instances on ports FIRST_PORT.. sharing
# one fresh SQLite file (and whatever the variables add, such as DUET_REDIS_URL). TARGETS and
# SERVER_PIDS say where they are.
start_instances() {
    local n=$1 first=$2; shift 2
    local shared; shared=$(mktemp -d); DATA_DIRS+=("$shared")
    SERVER_PIDS=(); TARGETS=""
    for i in $(seq 0 $((n - 1))); do
        local port=$((first + i)) dir; dir=$(mktemp -d); DATA_DIRS+=("$dir")
        port_free "$port"
        "${SERVER_CPU[@]}" nice -n "$NICE" env DUET_ADDR=127.0.0.1:$port DUET_DATA_DIR="$dir" \
            DUET_DATABASE_URL="sqlite://$shared/duet.db" \
            DUET_REGISTER_LIMIT=1000000 DUET_MAX_CONNECTIONS_PER_IP=1000000 DUET_MAX_CONNECTIONS=1000000 \
            DUET_PRESENCE=everyone DUET_RATE_LIMIT=1000000 \
            "$@" "$DUET" >>"$OUT/duet-$port.log" 2>&1 &
        SERVER_PIDS+=($!)
        TARGETS+="${TARGETS:+,}127.0.0.1:$port"
        # The first one creates the database; the others open it.
        wait_port "$port"
    done
}

stop_instances() {
    for pid in "${SERVER_PIDS[@]}"; do stop_pid "$pid"; done
    SERVER_PIDS=()
}

# wait_linked REDIS_PORT N: until N instances listen on Redis's `duet:all` channel.
wait_linked() {
    for _ in $(seq 100); do
        local subs
        subs=$(redis-cli -h 127.0.0.1 -p "$1" pubsub numsub duet:all 2>/dev/null | tail -n 1)
        [ "${subs:-0}" -ge "$2" ] && return 0
        sleep 0.1
    done
    echo "instances did not link through Redis on port $1" | tee -a "$LOG"
    return 1
}

# instance_table: one line per instance: port, established TCP connections to it (the metrics
# gauge is on DUET_METRICS_ADDR, not set here), VmRSS kB.
instance_table() {
    local i=0
    for pid in "${SERVER_PIDS[@]}"; do
        local port=${TARGETS//,/ }; port=$(echo $port | cut -d' ' -f$((i + 1)) | cut -d: -f2)
        local conns rss
        conns=$(ss -Htn state established "( sport = :$port )" | wc -l)
        rss=$(awk '/^VmRSS/ { print $2 }' "/proc/$pid/status")
        echo "$port ${conns:-0} $rss"
        i=$((i + 1))
    done
}

wait_port() {
    for _ in $(seq 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    echo "server on port $1 did not come up" | tee -a "$LOG"
    return 1
}

# start_duet PORT [VAR=value ...]: a fresh data directory every time. Every user sees everyone
# online (DUET_PRESENCE=everyone), the workload these benchmarks have always measured.
start_duet() {
    local port=$1; shift
    local dir; dir=$(mktemp -d); DATA_DIRS+=("$dir")
    "${SERVER_CPU[@]}" nice -n "$NICE" env DUET_ADDR=127.0.0.1:$port DUET_DATA_DIR="$dir" \
        DUET_REGISTER_LIMIT=1000000 DUET_MAX_CONNECTIONS_PER_IP=1000000 DUET_MAX_CONNECTIONS=1000000 \
        DUET_PRESENCE=everyone \
        "$@" "$DUET" >>"$OUT/duet-$port.log" 2>&1 &
    SERVER_PID=$!
    wait_port "$port"
}

start_minimal() {
    "${SERVER_CPU[@]}" nice -n "$NICE" "$MINIMAL" "127.0.0.1:$1" >>"$OUT/minimal-$1.log" 2>&1 &
    SERVER_PID=$!
    wait_port "$1"
}

start_peerjs() {
    # Its defaults cap clients at 5,000 and drop those without a HEARTBEAT for 60 s.
    "${SERVER_CPU[@]}" nice -n "$NICE" node "$PEERJS" --host 127.0.0.1 --port "$1" --concurrent_limit 1000000 \
        --alive_timeout 600000 >/dev/null 2>>"$OUT/peerjs-$1.log" &
    SERVER_PID=$!
    wait_port "$1"
}

# loadgen NAME ARGS...: one run, its JSON report kept as $OUT/NAME.json.
loadgen() {
    local name=$1$SUFFIX; shift
    echo "== $name: loadgen $*" | tee -a "$LOG"
    local pids=${SERVER_PID:-$(IFS=,; echo "${SERVER_PIDS[*]}")}
    local redis=(); [ -z "$REDIS_PID" ] || redis=(--redis-pid "$REDIS_PID")
    if timeout 900 "${GEN_CPU[@]}" nice -n "$NICE" "$LOADGEN" --server-pid "$pids" "${redis[@]}" --label "$name" \
        --json-out "$OUT/$name.json" "${GEN_ARGS[@]}" "$@" >>"$LOG" 2>&1; then
        echo "   ok" | tee -a "$LOG"
    else
        echo "   exit $? (see $LOG)" | tee -a "$LOG"
    fi
    summary "$OUT/$name.json"
}

summary() {
    [ -f "$1" ] || return 0
    python3 - "$1" <<'EOF' | tee -a "$LOG"
import json, sys
r = json.load(open(sys.argv[1]))
l = r["latency"]
print(f'   {r["label"]}: connected {r["connected"]}/{r["conns"]} in {r["connect_secs"]} s, '
      f'delivered {r["delivered_per_sec"]} msg/s, p50 {l["p50_us"]} p99 {l["p99_us"]} '
      f'p99.9 {l["p99_9_us"]} max {l["max_us"]} us, lost {r["lost"]} dup {r["duplicated"]} '
      f'misrouted {r["misrouted"]} errors {r["errors"]}, server {r["server_bytes_per_conn"]} B/conn, '
      f'server frames {r["server_frames"]}, server CPU {r["server_cpu_secs"]} s = '
      f'{r["server_cpu_us_per_msg"]} us/msg, loadgen CPU {r["loadgen_cpu_secs"]} s, '
      f'load {r["loadavg_before_load"]}')
if r.get("server_cpu_ramp_up_secs") is not None:
    print(f'   ramp-up (connecting, then a {r["settle_secs"]} s settle): '
          f'{r["server_frames_ramp_up"]} frames, server CPU {r["server_cpu_ramp_up_secs"]} s; '
          f'{r["contacts_each"]} contacts each, set up in {r["contacts_secs"]} s')
if r.get("instances", 1) > 1 or r.get("redis_cpu_secs") is not None:
    each = r.get("server_cpu_secs_each")
    print(f'   {r["instances"]} instance(s), placement {r.get("placement")}: server CPU each {each} s, '
          f'redis CPU {r.get("redis_cpu_secs")} s = {r.get("redis_cpu_us_per_msg")} us/msg')
    for kind in ("latency_local", "latency_cross"):
        if kind in r and r[kind]["count"]:
            k = r[kind]
            print(f'   {kind}: {k["count"]} msgs, p50 {k["p50_us"]} p99 {k["p99_us"]} '
                  f'p99.9 {k["p99_9_us"]} max {k["max_us"]} us')
if "login_burst" in r:
    b = r["login_burst"]
    print(f'   burst of {b["logins"]} logins took {b["burst_secs"]} s: p99 during '
          f'{b["latency_during_burst"]["p99_us"]} us ({b["latency_during_burst"]["count"]} msgs), '
          f'outside {b["latency_outside_burst"]["p99_us"]} us')
EOF
}

# Other checkouts run this script on the same machine: BASE_PORT moves every port it uses.
PORT=${BASE_PORT:-18400}
for scenario in "${SCENARIOS[@]}"; do
    PORT=$((PORT + 1))
    case $scenario in
    throughput)
        start_duet $PORT
        loadgen duet-closed-1k --flavour duet --target 127.0.0.1:$PORT --mode closed --conns 1000 --duration "$DURATION"
        stop_server
        start_minimal $PORT
        loadgen minimal-closed-1k --flavour minimal --target 127.0.0.1:$PORT --mode closed --conns 1000 --duration "$DURATION"
        stop_server
        start_peerjs $PORT
        loadgen peerjs-closed-1k --flavour peerjs --target 127.0.0.1:$PORT --mode closed --conns 1000 --duration "$DURATION"
        stop_server
        ;;
    latency)
        start_duet $PORT
        loadgen duet-open-10k --flavour duet --target 127.0.0.1:$PORT --mode open --rate 10000 --conns 1000 --duration "$DURATION"
        stop_server
        start_minimal $PORT
        loadgen minimal-open-10k --flavour minimal --target 127.0.0.1:$PORT --mode open --rate 10000 --conns 1000 --duration "$DURATION"
        stop_server
        start_peerjs $PORT
        loadgen peerjs-open-10k --flavour peerjs --target 127.0.0.1:$PORT --mode open --rate 10000 --conns 1000 --duration "$DURATION"
        stop_server
        ;;
    burst)
        start_duet $PORT
        loadgen duet-open-10k-logins50 --flavour duet --target 127.0.0.1:$PORT --mode open --rate 10000 --conns 1000 \
            --duration "$DURATION" --login-burst 50 --burst-at 3
        stop_server
        # The same with one hash at a time: a core stays free for the relay on a 2-core box.
        start_duet $PORT DUET_HASH_CONCURRENCY=1
        loadgen duet-open-10k-logins50-hash1 --flavour duet --target 127.0.0.1:$PORT --mode open --rate 10000 --conns 1000 \
            --duration "$DURATION" --login-burst 50 --burst-at 3
        stop_server
        ;;
    idle)
        # RLIMIT_NOFILE's hard limit is what caps one process here (see the doc): MAX_CONNS below it.
        for n in ${IDLE_SIZES:-10000 $MAX_CONNS}; do
            # Connections spread over 10 accounts: the figure is the connection's own cost. With
            # 1,000 accounts every connection also receives a ~9 KB presence list, whose freed
            # buffers the allocator keeps (see the doc).
            start_duet $PORT
            loadgen duet-idle-$n-u10 --flavour duet --target 127.0.0.1:$PORT --mode idle --conns $n --idle-users 10 --settle 5
            stop_server
            start_duet $PORT
            loadgen duet-idle-$n-u1000 --flavour duet --target 127.0.0.1:$PORT --mode idle --conns $n --idle-users 1000 --settle 5
            stop_server
            start_minimal $PORT
            loadgen minimal-idle-$n --flavour minimal --target 127.0.0.1:$PORT --mode idle --conns $n --settle 5
            stop_server
        done
        ;;
    concurrency)
        N=${CONCURRENCY:-$MAX_CONNS}
        start_duet $PORT
        loadgen duet-open-10k-at-$N --flavour duet --target 127.0.0.1:$PORT --mode open --rate 10000 --conns "$N" \
            --active 1000 --idle-users 1000 --duration "$DURATION" --settle 5
        stop_server
        start_minimal $PORT
        loadgen minimal-open-10k-at-$N --flavour minimal --target 127.0.0.1:$PORT --mode open --rate 10000 --conns "$N" \
            --active 1000 --duration "$DURATION" --settle 5
        stop_server
        ;;
    malloc)
        # Environment only, no code change: glibc malloc tunables (default: a fixed mmap
        # threshold, so argon2's 19 MiB blocks go back to the system when freed).
        TUNABLES=${TUNABLES:-glibc.malloc.mmap_threshold=131072}
        TAG=${TAG:-mmap128k}
        start_duet $PORT GLIBC_TUNABLES=$TUNABLES
        loadgen duet-idle-10000-u10-$TAG --flavour duet --target 127.0.0.1:$PORT --mode idle --conns 10000 --idle-users 10 --settle 5
        stop_server
        start_duet $PORT GLIBC_TUNABLES=$TUNABLES
        loadgen duet-idle-10000-u1000-$TAG --flavour duet --target 127.0.0.1:$PORT --mode idle --conns 10000 --idle-users 1000 --settle 5
        stop_server
        ;;
    contacts)
        N=${CONTACTS_USERS:-10000}
        K=${CONTACTS_EACH:-20}
        # Both cores hash the registrations; the measured figures are the ramp-up's.
        start_duet $PORT DUET_PRESENCE=contacts DUET_HASH_CONCURRENCY=2
        loadgen duet-ramp-contacts-$N-k$K --flavour duet --target 127.0.0.1:$PORT --mode idle --conns "$N" --contacts "$K" --settle 5
        stop_server
        start_duet $PORT DUET_HASH_CONCURRENCY=2
        loadgen duet-ramp-everyone-$N --flavour duet --target 127.0.0.1:$PORT --mode idle --conns "$N" --settle 5
        stop_server
        ;;
    presence)
        for n in ${PRESENCE_USERS:-1000 2000 4000}; do
            start_duet $PORT
            loadgen duet-presence-$n --flavour duet --target 127.0.0.1:$PORT --mode idle --conns "$n" --settle 2
            stop_server
        done
        ;;
    relay)
        PAIRS=${PAIRS:-200}
        CONNS=$((PAIRS * 2))
        for window in 1 8; do
            for envelope in seed duet; do
                # The rate limit (frames per second per connection) is raised: closed loop
                # drives each connection far above what a browser ever sends.
                start_duet $PORT DUET_RATE_LIMIT=1000000
                loadgen duet-relay-$envelope-w$window --flavour duet --envelope $envelope --target 127.0.0.1:$PORT \
                    --mode closed --window $window --conns $CONNS --duration "$DURATION"
                stop_server
                start_minimal $PORT
                loadgen minimal-relay-$envelope-w$window --flavour minimal --envelope $envelope --target 127.0.0.1:$PORT \
                    --mode closed --window $window --conns $CONNS --duration "$DURATION"
                stop_server
            done
            start_peerjs $PORT
            loadgen peerjs-relay-w$window --flavour peerjs --target 127.0.0.1:$PORT \
                --mode closed --window $window --conns $CONNS --duration "$DURATION"
            stop_server
        done
        start_duet $PORT DUET_RATE_LIMIT=1000000
        loadgen duet-relay-seed-open-10k --flavour duet --envelope seed --target 127.0.0.1:$PORT \
            --mode open --rate 10000 --conns $CONNS --duration "$DURATION"
        stop_server
        start_minimal $PORT
        loadgen minimal-relay-seed-open-10k --flavour minimal --envelope seed --target 127.0.0.1:$PORT \
            --mode open --rate 10000 --conns $CONNS --duration "$DURATION"
        stop_server
        start_peerjs $PORT
        loadgen peerjs-relay-open-10k --flavour peerjs --target 127.0.0.1:$PORT \
            --mode open --rate 10000 --conns $CONNS --duration "$DURATION"
        stop_server
        ;;
    everyone)
        N=${EVERYONE:-2000}
        start_duet $PORT
        loadgen duet-idle-$N-everyone --flavour duet --target 127.0.0.1:$PORT --mode idle --conns "$N" --settle 12
        stop_server
        start_minimal $PORT
        loadgen minimal-idle-$N --flavour minimal --target 127.0.0.1:$PORT --mode idle --conns "$N" --settle 12
        stop_server
        start_peerjs $PORT
        loadgen peerjs-idle-$N --flavour peerjs --target 127.0.0.1:$PORT --mode idle --conns "$N" --settle 12
        stop_server
        ;;
    instances)
        # One database, one Redis; 1, 2 and 4 instances on the same cores. Each run registers
        # its own users (a prefix per run) through the first instance.
        PAIRS=${PAIRS:-200}
        CONNS=$((PAIRS * 2))
        REDIS_PORT=$((PORT + 100))
        start_redis $REDIS_PORT
        REDIS=redis://127.0.0.1:$REDIS_PORT/
        # The default deployment first: one instance, no Redis.
        start_instances 1 $PORT
        REDIS_PID_KEPT=$REDIS_PID; REDIS_PID=""
        for window in 1 8; do
            loadgen duet-1i-noredis-w$window --flavour duet --envelope duet --targets "$TARGETS" --prefix n1w$window- \
                --mode closed --window $window --conns $CONNS --duration "$DURATION"
        done
        REDIS_PID=$REDIS_PID_KEPT
        stop_instances
        for n in 1 2 4; do
            start_instances $n $PORT DUET_REDIS_URL=$REDIS
            wait_linked $REDIS_PORT $n
            placements=(local); [ $n -eq 1 ] || placements=(local cross)
            for placement in "${placements[@]}"; do
                for window in 1 8; do
                    loadgen duet-${n}i-$placement-w$window --flavour duet --envelope duet --targets "$TARGETS" \
                        --placement $placement --prefix i$n$placement$window- \
                        --mode closed --window $window --conns $CONNS --duration "$DURATION"
                done
            done
            if [ $n -gt 1 ]; then
                for rate in ${OPEN_RATES:-5000 10000}; do
                    loadgen duet-${n}i-mixed-open-$rate --flavour duet --envelope duet --targets "$TARGETS" \
                        --placement mixed --prefix i${n}mixed$rate- \
                        --mode open --rate "$rate" --conns $CONNS --duration "$DURATION"
                done
            fi
            stop_instances
        done
        stop_redis
        ;;
    instances100k)
        # #17: TOTAL (100,000) authenticated connections held at once across N100K (6) instances
        # on one SQLite file and one Redis. One process may hold 20,000 sockets here, so
        # GENERATORS (6) generators run at once, each spreading its share over every instance.
        # Once every connection is held (the instances' own gauges), each instance's memory is
        # read, and an open loop at 10,000 msg/s runs on 1,000 more connections (pairs half local,
        # half across instances) beside them.
        # A closed loop (window 8, 400 connections, pairs half local, half across instances)
        # before the crowd and again while it is held gives the server CPU per message at
        # 100,000. See docs/benchmarks.md "Across instances".
        N=${N100K:-6}; TOTAL=${TOTAL:-100000}; GENS=${GENERATORS:-6}; HOLD=${HOLD:-180}
        REDIS_PORT=$((PORT + 100))
        start_redis $REDIS_PORT
        start_instances "$N" $PORT DUET_REDIS_URL=redis://127.0.0.1:$REDIS_PORT/ DUET_PRESENCE=contacts
        wait_linked $REDIS_PORT "$N"
        instance_table > "$OUT/instances-100k-before.txt"
        # The cost of a message on these 6 instances before the crowd arrives, for comparison
        # with the same closed loop while the 100,000 are held.
        loadgen duet-6i-closed-w8 --flavour duet --envelope duet --targets "$TARGETS" \
            --placement mixed --prefix c0- --mode closed --window 8 --conns 400 --duration "$DURATION"
        GEN_PIDS=()
        for g in $(seq 1 "$GENS"); do
            timeout $((HOLD + 600)) nice -n "$NICE" "$LOADGEN" --flavour duet --targets "$TARGETS" \
                --mode idle --conns $((TOTAL / GENS)) --idle-users 100 --settle "$HOLD" --prefix h$g- \
                --label duet-100k-idle-g$g --json-out "$OUT/duet-100k-idle-g$g.json" >>"$LOG" 2>&1 &
            GEN_PIDS+=($!)
        done
        held=0
        for _ in $(seq 600); do
            held=$(instance_table | awk '{ sum += $2 } END { print sum + 0 }')
            [ "$held" -ge $(( TOTAL / GENS * GENS )) ] && break
            sleep 1
        done
        echo "== held at once: $held connections" | tee -a "$LOG"
        instance_table > "$OUT/instances-100k-held.txt"
        loadgen duet-100k-open-10000 --flavour duet --envelope duet --targets "$TARGETS" \
            --placement mixed --prefix h0- --mode open --rate 10000 --conns 1000 --duration "$DURATION"
        loadgen duet-100k-closed-w8 --flavour duet --envelope duet --targets "$TARGETS" \
            --placement mixed --prefix c1- --mode closed --window 8 --conns 400 --duration "$DURATION"
        instance_table > "$OUT/instances-100k-after-load.txt"
        for pid in "${GEN_PIDS[@]}"; do wait "$pid" || true; done
        stop_instances
        stop_redis
        ;;
    *)
        echo "unknown scenario $scenario" >&2
        exit 2
        ;;
    esac
done
echo "results in $OUT" | tee -a "$LOG"
