#!/usr/bin/env bash
# Sharded replay: COUNT recorded tests replayed as one run against one app
# instance, then as SHARDS concurrent `recplay test --shard I/N` runs, each
# against its own app instance (as CI runners would), merged with
# `recplay report merge`. Reports the wall times and their ratio; on a
# machine with fewer cores than shards the ratio is bounded by the cores.
#
# Usage: bench/shard/run.sh [COUNT] [SHARDS]
set -euo pipefail

COUNT="${1:-10000}"
SHARDS="${2:-4}"
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"

cargo build --release --quiet --bin recplay --example replay_bench
BIN="$ROOT/target/release/recplay"
HELPER="$ROOT/target/release/examples/replay_bench"

WORK="$(mktemp -d)"
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# One app instance per shard (instance 1 also serves the single run).
PORTS=()
for _ in $(seq "$SHARDS"); do
  port="$(free_port)"
  "$HELPER" serve "$port" &
  PIDS+=("$!")
  PORTS+=("$port")
done
for port in "${PORTS[@]}"; do
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.05
  done
done

"$HELPER" generate "$WORK/keploy" "$COUNT" "http://127.0.0.1:${PORTS[0]}" >/dev/null
cp "$ROOT/keploy.yml.template" "$WORK/keploy.yml"

now() { python3 -c 'import time; print(time.monotonic())'; }

# The single run (no CI variables may shard it by accident).
unset CI_NODE_INDEX CI_NODE_TOTAL JOB_COMPLETION_INDEX
START="$(now)"
(cd "$WORK" && "$BIN" test --http-target "http://127.0.0.1:${PORTS[0]}" >"$WORK/one.out" 2>"$WORK/one.err") \
  || { echo "the single run failed" >&2; tail -20 "$WORK/one.err" >&2; exit 1; }
END="$(now)"
ONE="$(python3 -c "print(f'{$END - $START:.3f}')")"

# The shards, all at once, then the merge.
START="$(now)"
SHARD_PIDS=()
for i in $(seq "$SHARDS"); do
  (cd "$WORK" && exec "$BIN" test --shard "$i/$SHARDS" \
      --http-target "http://127.0.0.1:${PORTS[$((i - 1))]}" >"$WORK/shard-$i.out" 2>"$WORK/shard-$i.err") &
  SHARD_PIDS+=("$!")
done
for i in "${!SHARD_PIDS[@]}"; do
  wait "${SHARD_PIDS[$i]}" || { echo "shard $((i + 1)) failed" >&2; tail -20 "$WORK/shard-$((i + 1)).err" >&2; exit 1; }
done
END="$(now)"
MANY="$(python3 -c "print(f'{$END - $START:.3f}')")"
(cd "$WORK" && "$BIN" report merge keploy/reports >"$WORK/merge.out" 2>"$WORK/merge.err") \
  || { echo "the merge failed" >&2; cat "$WORK/merge.err" >&2; exit 1; }

LOAD="$(cut -d' ' -f1 /proc/loadavg)"
python3 - "$COUNT" "$SHARDS" "$ONE" "$MANY" "$(nproc)" "$LOAD" <<'PY'
import sys
count, shards, one, many, cores, load = sys.argv[1:]
one, many = float(one), float(many)
print(f"{int(count):,} tests; {cores} cores; load average after the runs: {load}")
print("| measure | value |")
print("| --- | --- |")
print(f"| one run, one app instance: wall (s) | {one:.2f} |")
print(f"| {shards} concurrent shards, {shards} app instances: wall (s) | {many:.2f} |")
print(f"| speed-up (one / sharded) | {one / many:.2f}x |")
PY
