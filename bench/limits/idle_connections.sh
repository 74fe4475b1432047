#!/usr/bin/env bash
# 10,000 idle keep-alive connections against `recplay record` with its
# default limits (--http-max-connections 1024): how many are held, how many
# are refused with 503, and the proxy's open file descriptors before,
# during and after (from /proc/PID/fd).
#
# Usage: bench/limits/idle_connections.sh
#   COUNT=10000 HOLD=5 BASE_PORT=18500 RECPLAY=target/release/recplay bench/limits/idle_connections.sh
# Needs python3. Uses target/release/recplay when built, else target/debug.
set -euo pipefail

COUNT=${COUNT:-10000}
HOLD=${HOLD:-5}
BASE_PORT=${BASE_PORT:-18500}
UPSTREAM_PORT=$BASE_PORT
RECPLAY_PORT=$((BASE_PORT + 1))
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
if [[ -z "${RECPLAY:-}" ]]; then
    RECPLAY=$ROOT/target/release/recplay
    [[ -x $RECPLAY ]] || RECPLAY=$ROOT/target/debug/recplay
fi
[[ -x $RECPLAY ]] || { echo "build recplay first: cargo build --release" >&2; exit 1; }

# The clients hold COUNT sockets; the proxy up to two per held connection.
HARD=$(ulimit -Hn)
WANT=$((COUNT + 4096))
if [[ $HARD != unlimited && $HARD -lt $WANT ]]; then WANT=$HARD; fi
ulimit -n "$WANT"

WORK=$(mktemp -d)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

python3 "$ROOT/bench/limits/idle_clients.py" upstream "$UPSTREAM_PORT" &
PIDS+=($!)
"$RECPLAY" record --path "$WORK/keploy" \
    --http-listen "127.0.0.1:$RECPLAY_PORT" \
    --http-upstream "http://127.0.0.1:$UPSTREAM_PORT" >"$WORK/recplay.out" 2>"$WORK/recplay.err" &
RECPLAY_PID=$!
PIDS+=($RECPLAY_PID)
for _ in $(seq 100); do
    grep -q "HTTP: recording" "$WORK/recplay.out" 2>/dev/null && break
    sleep 0.1
done

echo "recplay: $RECPLAY (pid $RECPLAY_PID), open-file limit $(ulimit -n)"
python3 "$ROOT/bench/limits/idle_clients.py" clients "127.0.0.1:$RECPLAY_PORT" "$COUNT" "$RECPLAY_PID" "$HOLD"
kill -INT "$RECPLAY_PID"
wait "$RECPLAY_PID" || true
grep -E "refused|recorded" "$WORK/recplay.out" "$WORK/recplay.err" | sed 's/^[^:]*://' | tail -3
