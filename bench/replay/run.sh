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

# Wall time and recplay's own CPU time (user+sys): on a shared machine the
# wall time includes waiting for a core, the CPU time does not.
read -r SECS CPU CODE < <(cd "$WORK" && python3 - "$BIN" "$BASE" "$WORK" <<'PY'
import resource, subprocess, sys, time
binary, base, work = sys.argv[1:]
start = time.monotonic()
with open(f"{work}/out.txt", "w") as out, open(f"{work}/err.txt", "w") as err:
    code = subprocess.call([binary, "test", "--http-target", base, "--junit", f"{work}/junit.xml"], stdout=out, stderr=err)
wall = time.monotonic() - start
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
print(f"{wall:.3f} {ru.ru_utime + ru.ru_stime:.3f} {code}")
PY
)
LOAD="$(cut -d' ' -f1 /proc/loadavg)"
if [ "$CODE" -ne 0 ]; then
  echo "recplay test exited $CODE" >&2; tail -20 "$WORK/out.txt" "$WORK/err.txt" >&2; exit 1
fi
SUMMARY="$(grep '^test-set-0:' "$WORK/out.txt")"

python3 - "$COUNT" "$SECS" "$CPU" "$WRK1" "$WRK8" "$SUMMARY" "$LOAD" <<'PY'
import sys
count, secs, cpu, wrk1, wrk8, summary, load = sys.argv[1:]
count, secs, cpu = int(count), float(secs), float(cpu)
rate = count / secs
print(f"replayed: {summary}; load average during the run: {load}")
print("| measure | value |")
print("| --- | --- |")
print(f"| wrk baseline, 1 connection (req/s) | {float(wrk1):,.0f} |")
print(f"| wrk, 8 connections (req/s) | {float(wrk8):,.0f} |")
print(f"| recplay test, {count:,} tests: wall time incl. start-up, load, compare, reports (s) | {secs:.2f} |")
print(f"| recplay test, tests/s (wall) | {rate:,.0f} |")
print(f"| recplay / wrk 1-connection baseline | {rate/float(wrk1):.2f} |")
print(f"| recplay CPU time, user+sys (s) | {cpu:.2f} |")
print(f"| tests per recplay CPU-second | {count/cpu:,.0f} |")
print(f"| target 2,000 tests/s (wall) met | {'yes' if rate >= 2000 else 'no'} |")
PY
