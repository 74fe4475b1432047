#!/usr/bin/env bash
# HTTP recording proxy benchmark: one run, one upstream, three paths.
#
#   direct   wrk -> upstream
#   nginx    wrk -> nginx (plain reverse proxy, upstream keep-alive) -> upstream
#   recplay  wrk -> recplay record (release build, recording every exchange) -> upstream
#
# The upstream is an nginx instance answering a small JSON body, so the
# proxies are what is measured. Needs: wrk and nginx (Debian:
# `apt-get install -y wrk nginx`), cargo.
#
# Usage: bench/http/run.sh            (environment overrides below)
#   DURATION=10s CONNECTIONS=64 THREADS=2 BASE_PORT=18400 bench/http/run.sh
#   KEPLOY_DIR=/dev/shm/recplay-bench bench/http/run.sh   (record onto tmpfs,
#   to tell the proxy's cost from the file system's)
set -euo pipefail

DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-2}
BASE_PORT=${BASE_PORT:-18400}
UPSTREAM_PORT=$BASE_PORT
NGINX_PORT=$((BASE_PORT + 1))
RECPLAY_PORT=$((BASE_PORT + 2))

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
for tool in wrk "$NGINX" cargo; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "missing $tool; on Debian: apt-get install -y wrk nginx" >&2
        exit 1
    fi
done

WORK=$(mktemp -d)
KEPLOY_DIR=${KEPLOY_DIR:-$WORK/keploy}
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    wait 2>/dev/null || true
    rm -rf "$WORK" "$KEPLOY_DIR"
}
trap cleanup EXIT

echo "building recplay (release)..." >&2
(cd "$ROOT" && cargo build --release --quiet)
RECPLAY=$ROOT/target/release/recplay

nginx_conf() { # name workers body-of-server-block
    local name=$1 workers=$2 server=$3
    mkdir -p "$WORK/$name"
    cat >"$WORK/$name/nginx.conf" <<CONF
worker_processes $workers;
pid $WORK/$name/nginx.pid;
error_log $WORK/$name/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $WORK/$name/body;
    proxy_temp_path $WORK/$name/proxy;
    fastcgi_temp_path $WORK/$name/fastcgi;
    uwsgi_temp_path $WORK/$name/uwsgi;
    scgi_temp_path $WORK/$name/scgi;
    $server
}
CONF
    "$NGINX" -p "$WORK/$name" -c "$WORK/$name/nginx.conf" -g 'daemon off;' &
    PIDS+=($!)
}

wait_port() {
    for _ in $(seq 1 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then
            return 0
        fi
        sleep 0.1
    done
    echo "nothing listens on port $1" >&2
    exit 1
}

nginx_conf upstream 1 "server {
        listen 127.0.0.1:$UPSTREAM_PORT;
        location / {
            default_type application/json;
            return 200 '{\"id\":42,\"name\":\"widget\",\"tags\":[\"a\",\"b\"],\"price\":9.5}';
        }
    }"
nginx_conf proxy auto "upstream app {
        server 127.0.0.1:$UPSTREAM_PORT;
        keepalive 64;
    }
    server {
        listen 127.0.0.1:$NGINX_PORT;
        location / {
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Connection \"\";
        }
    }"
NGINX_PROXY_PID=${PIDS[1]}
"$RECPLAY" record --path "$KEPLOY_DIR" --http-listen "127.0.0.1:$RECPLAY_PORT" \
    --http-upstream "http://127.0.0.1:$UPSTREAM_PORT" >"$WORK/recplay.out" 2>"$WORK/recplay.err" &
RECPLAY_PID=$!
PIDS+=("$RECPLAY_PID")
wait_port "$UPSTREAM_PORT"
wait_port "$NGINX_PORT"
wait_port "$RECPLAY_PORT"

# p99 from `wrk --latency`, in milliseconds.
to_ms() {
    awk '{ v = $1; if (v ~ /us$/) { sub(/us$/, "", v); v /= 1000 }
           else if (v ~ /ms$/) { sub(/ms$/, "", v) }
           else if (v ~ /s$/) { sub(/s$/, "", v); v *= 1000 }
           printf "%.3f", v }'
}

# CPU time (user + system, clock ticks) of a process and its children:
# nginx's master and workers, or recplay.
cpu_ticks() { # pid
    local total=0 pid
    for pid in "$1" $(ps -o pid= --ppid "$1"); do
        total=$((total + $(awk '{ print $14 + $15 }' "/proc/$pid/stat" 2>/dev/null || echo 0)))
    done
    echo "$total"
}

declare -A RPS P50 P99 TOTAL CPU_US
measure() { # name port [pid whose CPU to count]
    local out before=0
    wrk -t "$THREADS" -c "$CONNECTIONS" -d 2s "http://127.0.0.1:$2/items?id=42" >/dev/null
    [ -n "${3:-}" ] && before=$(cpu_ticks "$3")
    out=$(wrk -t "$THREADS" -c "$CONNECTIONS" -d "$DURATION" --latency "http://127.0.0.1:$2/items?id=42")
    if [ -n "${3:-}" ]; then
        CPU_US[$1]=$(awk -v t="$(($(cpu_ticks "$3") - before))" -v hz="$(getconf CLK_TCK)" \
            -v n="$(echo "$out" | awk '/requests in/ { print $1 }')" 'BEGIN { printf "%.1f", t / hz * 1e6 / n }')
    fi
    echo "$out" >"$WORK/wrk-$1.txt"
    RPS[$1]=$(echo "$out" | awk '/^Requests\/sec:/ { print $2 }')
    P50[$1]=$(echo "$out" | awk '$1 == "50%" { print $2 }' | to_ms)
    P99[$1]=$(echo "$out" | awk '$1 == "99%" { print $2 }' | to_ms)
    TOTAL[$1]=$(echo "$out" | awk '/requests in/ { print $1 }')
    if echo "$out" | grep -q "Non-2xx"; then
        echo "$1: some responses were not 2xx:" >&2
        grep "Non-2xx" <<<"$out" >&2
    fi
}

measure direct "$UPSTREAM_PORT"
measure nginx "$NGINX_PORT" "$NGINX_PROXY_PID"
measure recplay "$RECPLAY_PORT" "$RECPLAY_PID"

# Test files still to write when the load stops, then the time from the
# stop signal until recplay has written them all and exited.
AT_STOP=$(find "$KEPLOY_DIR" -name 'test-*.yaml' | wc -l)
PEAK_RSS_MB=$(awk '/^VmHWM:/ { printf "%.0f", $2 / 1024 }' "/proc/$RECPLAY_PID/status")
OPEN_FDS=$(find "/proc/$RECPLAY_PID/fd" -mindepth 1 | wc -l)
STOP_STARTED=$(date +%s.%N)
kill -TERM "$RECPLAY_PID"
wait "$RECPLAY_PID" || true
STOP_SECONDS=$(awk -v a="$STOP_STARTED" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }')
RECORDED=$(find "$KEPLOY_DIR" -name 'test-*.yaml' | wc -l)

echo
echo "wrk -t$THREADS -c$CONNECTIONS -d$DURATION, $(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg), $(date -u +%Y-%m-%d)"
echo "test files on: $(df --output=fstype "$KEPLOY_DIR" | tail -1)"
echo
echo "| path | requests/s | p50 ms | p99 ms | throughput vs nginx | p99 - nginx p99 (ms) |"
echo "|---|---:|---:|---:|---:|---:|"
for name in direct nginx recplay; do
    ratio=$(awk -v a="${RPS[$name]}" -v b="${RPS[nginx]}" 'BEGIN { printf "%.2f", a / b }')
    delta=$(awk -v a="${P99[$name]}" -v b="${P99[nginx]}" 'BEGIN { printf "%+.3f", a - b }')
    echo "| $name | ${RPS[$name]} | ${P50[$name]} | ${P99[$name]} | ${ratio}x | $delta |"
done
echo
echo "Proxy CPU per request (user + system): nginx ${CPU_US[nginx]} us, recplay ${CPU_US[recplay]} us (recording included)."
echo "recplay wrote $RECORDED test files for ${TOTAL[recplay]} requests in the measured run (plus the 2 s warm-up)."
echo "recplay's peak RSS ${PEAK_RSS_MB} MB; open descriptors when the load stopped: $OPEN_FDS."
echo "At the stop signal $AT_STOP test files existed; recplay wrote the other $((RECORDED - AT_STOP)) and exited in $STOP_SECONDS s."
tail -n 2 "$WORK/recplay.out"
grep -i "not recorded" "$WORK/recplay.err" | head -n 3 || true
