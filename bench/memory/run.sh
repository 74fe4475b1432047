#!/usr/bin/env bash
# Memory of big recordings: peak RSS and time until the PostgreSQL mock
# server listens, for synthetic mocks.yaml files of 10 MB and 100 MB (and
# 1 GB with --big), written by recplay's own writer; then peak RSS of
# `recplay test` replaying 10,000 and 100,000 tests against a fast local
# HTTP server.
#
# Usage: bench/memory/run.sh [--big] [--debug] [--bin PATH]
#   --big      also the 1 GB mocks.yaml (needs ~1 GB of disk, takes minutes)
#   --debug    use the debug build (quicker to build; times are not release's)
#   --bin PATH measure this recplay binary (e.g. one built from an older commit)
#   --no-build use the binaries already built
#   --replay-only skip the mocks.yaml part
#   --tests "N ..." replay these numbers of tests (default "10000 100000")
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"
SIZES=(10 100)
COUNTS=(10000 100000)
PROFILE=release
BIN=""
BUILD=1
while [ $# -gt 0 ]; do
  case "$1" in
    --big) SIZES+=(1000) ;;
    --debug) PROFILE=debug ;;
    --bin) BIN="$2"; shift ;;
    --no-build) BUILD=0 ;;
    --replay-only) SIZES=() ;;
    --tests) read -r -a COUNTS <<<"$2"; shift ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done

FLAG=$([ "$PROFILE" = release ] && echo --release || true)
[ "$BUILD" = 0 ] || cargo build $FLAG --quiet --bin recplay --example memory_bench --example replay_bench
BIN="${BIN:-$ROOT/target/$PROFILE/recplay}"
MOCKS="${MEMORY_BENCH:-$ROOT/target/$PROFILE/examples/memory_bench}"
HELPER="${REPLAY_BENCH:-$ROOT/target/$PROFILE/examples/replay_bench}"

WORK="$(mktemp -d)"
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"' EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

echo "| mocks.yaml | mocks | peak RSS until listening | RSS / file | time until listening |"
echo "|---:|---:|---:|---:|---:|"
for MB in ${SIZES[@]+"${SIZES[@]}"}; do
  DIR="$WORK/mocks-$MB"
  COUNT="$("$MOCKS" mocks "$DIR" "$MB")"
  BYTES="$(stat -c %s "$DIR/test-set-0/mocks.yaml")"
  PG="$(free_port)"
  # No app and nothing on the HTTP target: recplay loads the set, starts
  # the mock server, then waits for the app; the loop below measures it
  # once the mock server accepts, then stops it.
  START="$(date +%s.%N)"
  "$BIN" test --path "$DIR" --pg-listen "127.0.0.1:$PG" \
    --http-target "http://127.0.0.1:$(free_port)" --delay 600 >/dev/null 2>&1 &
  PID=$!
  PIDS+=("$PID")
  until (exec 3<>"/dev/tcp/127.0.0.1/$PG") 2>/dev/null; do
    kill -0 "$PID" 2>/dev/null || { echo "recplay exited before listening" >&2; exit 1; }
    sleep 0.01
  done
  END="$(date +%s.%N)"
  HWM_KB="$(awk '/^VmHWM/ {print $2}' "/proc/$PID/status")"
  kill "$PID"; wait "$PID" 2>/dev/null || true
  python3 - "$BYTES" "$COUNT" "$HWM_KB" "$START" "$END" <<'PY'
import sys
size, count, hwm, start, end = sys.argv[1:]
size, hwm = int(size), int(hwm) * 1024
print(f"| {size/1e6:,.0f} MB | {int(count):,} | {hwm/1e6:,.1f} MB | {hwm/size:.2f} | {float(end)-float(start):.2f} s |")
PY
  rm -rf "$DIR"
done

UP="$(free_port)"
"$HELPER" serve "$UP" &
PIDS+=($!)
until (exec 3<>"/dev/tcp/127.0.0.1/$UP") 2>/dev/null; do sleep 0.05; done
echo
echo "| tests replayed | peak RSS | per test | wall time |"
echo "|---:|---:|---:|---:|"
for COUNT in "${COUNTS[@]}"; do
  DIR="$WORK/tests-$COUNT"
  "$HELPER" generate "$DIR/keploy" "$COUNT" "http://127.0.0.1:$UP" >/dev/null
  python3 - "$BIN" "$UP" "$DIR" "$COUNT" "$ROOT/keploy.yml.template" <<'PY'
import resource, subprocess, sys, time
binary, port, work, count, config = sys.argv[1:]
start = time.monotonic()
code = subprocess.call([binary, "test", "--path", f"{work}/keploy", "--config", config,
                        "--http-target", f"http://127.0.0.1:{port}"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
wall = time.monotonic() - start
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
if code != 0:
    sys.exit(f"recplay test exited {code}")
print(f"| {int(count):,} | {peak/1e6:,.0f} MB | {peak/int(count)/1e3:.1f} KB | {wall:.1f} s |")
PY
  rm -rf "$DIR"
done
