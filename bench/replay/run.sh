#!/usr/bin/env bash
# Replay throughput: 10,000 recorded tests replayed by `recplay test`
# (comparison and report writing included) against a trivial upstream,
# next to a plain wrk baseline of the same upstream measured in the same run.
#
# Usage: bench/replay/run.sh [COUNT]      (needs wrk: apt-get install wrk)
set -euo pipefail

COUNT="${1:-10000}"
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"

command -v wrk >/dev/null || { echo "wrk is missing: apt-get install -y wrk" >&2; exit 2; }

cargo build --release --quiet --bin recplay --example replay_bench
BIN="$ROOT/target/release/recplay"
HELPER="$ROOT/target/release/examples/replay_bench"

WORK="$(mktemp -d)"
PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
"$HELPER" serve "$PORT" &
UPSTREAM=$!
trap 'kill "$UPSTREAM" 2>/dev/null || true; rm -rf "$WORK"' EXIT
for _ in $(seq 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
  sleep 0.05
done
BASE="http://127.0.0.1:$PORT"

"$HELPER" generate "$WORK/keploy" "$COUNT" "$BASE" >/dev/null
cp "$ROOT/keploy.yml.template" "$WORK/keploy.yml"

# Baseline: one connection, one request at a time, as replay sends them.
WRK1="$(wrk -t1 -c1 -d5s "$BASE/items/42" | awk '/Requests\/sec/ {print $2}')"
# For scale: what the upstream does with concurrency.
WRK8="$(wrk -t1 -c8 -d5s "$BASE/items/42" | awk '/Requests\/sec/ {print $2}')"

START="$(date +%s.%N)"
set +e
(cd "$WORK" && "$BIN" test --http-target "$BASE" --junit "$WORK/junit.xml" >"$WORK/out.txt" 2>"$WORK/err.txt")
CODE=$?
set -e
END="$(date +%s.%N)"
if [ "$CODE" -ne 0 ]; then
  echo "recplay test exited $CODE" >&2; tail -20 "$WORK/out.txt" "$WORK/err.txt" >&2; exit 1
fi
SUMMARY="$(grep '^test-set-0:' "$WORK/out.txt")"

python3 - "$COUNT" "$START" "$END" "$WRK1" "$WRK8" "$SUMMARY" <<'PY'
import sys
count, start, end, wrk1, wrk8, summary = sys.argv[1:]
secs = float(end) - float(start)
rate = int(count) / secs
print(f"replayed: {summary}")
print("| measure | value |")
print("| --- | --- |")
print(f"| wrk baseline, 1 connection (req/s) | {float(wrk1):,.0f} |")
print(f"| wrk, 8 connections (req/s) | {float(wrk8):,.0f} |")
print(f"| recplay test, {int(count):,} tests, wall time incl. start-up, load, compare, reports (s) | {secs:.2f} |")
print(f"| recplay test (tests/s) | {rate:,.0f} |")
print(f"| recplay / wrk 1-connection baseline | {rate/float(wrk1):.2f} |")
print(f"| target 2,000 tests/s met | {'yes' if rate >= 2000 else 'no'} |")
PY
