#!/usr/bin/env bash
# Crash safety of HTTP recording: ROUNDS rounds of SIGKILL at a random
# moment while concurrent HTTP traffic flows through `recplay record`, each
# followed by the recovery the next command on the directory runs. Counts,
# from the clients' side, every response received in full, and checks the
# recovered test set for corrupt files, duplicates, missing tests and
# leftover files (journal, temp files).
#
# Then two timings: SIGINT until every test file exists (recplay exits),
# and how many test files per second the materializer writes (a recovery
# of a journal whose test files were all removed).
#
# Needs: python3 with PyYAML, cargo. wrk is not needed: the client is
# bench/crash/load.py (PROCS processes of THREADS threads, keep-alive).
#
# Usage: bench/crash/run.sh
#   ROUNDS=20 PROCS=4 THREADS=4 BASE_PORT=18600 LOAD_SECONDS=5 bench/crash/run.sh
set -euo pipefail

ROUNDS=${ROUNDS:-20}
PROCS=${PROCS:-4}
THREADS=${THREADS:-4}
BASE_PORT=${BASE_PORT:-18600}
LOAD_SECONDS=${LOAD_SECONDS:-5}
UPSTREAM_PORT=$BASE_PORT

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
python3 -c 'import yaml' 2>/dev/null || { echo "needs PyYAML: pip install pyyaml" >&2; exit 1; }

WORK=$(mktemp -d)
KEPLOY=$WORK/keploy
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do
        kill -9 "$pid" 2>/dev/null || true
    done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

echo "building recplay (release)..." >&2
(cd "$ROOT" && cargo build --release --quiet --bin recplay)
RECPLAY=$ROOT/target/release/recplay

python3 "$HERE/upstream.py" "$UPSTREAM_PORT" &
PIDS+=($!)
for _ in $(seq 100); do
    curl -s -o /dev/null "http://127.0.0.1:$UPSTREAM_PORT/" && break
    sleep 0.05
done

# start_recplay PORT LOG: starts `recplay record`, waits until it records,
# sets REC_PID and REC_SET (the test set it records into).
start_recplay() {
    local port=$1 log=$2
    "$RECPLAY" record --path "$KEPLOY" --http-listen "127.0.0.1:$port" \
        --http-upstream "http://127.0.0.1:$UPSTREAM_PORT" >"$log" 2>"$log.err" &
    REC_PID=$!
    PIDS+=("$REC_PID")
    for _ in $(seq 400); do
        if grep -q '^recording into' "$log" 2>/dev/null; then
            REC_SET=$(sed -n 's/^recording into \(.*\); stop with.*/\1/p' "$log")
            return 0
        fi
        sleep 0.025
    done
    echo "recplay did not start; its log:" >&2
    cat "$log" "$log.err" >&2
    exit 1
}

now() { date +%s.%N; }

# start_load PORT OUT TAG: PROCS client processes; sets LOADS.
start_load() {
    LOADS=()
    for p in $(seq "$PROCS"); do
        python3 "$HERE/load.py" 127.0.0.1 "$1" "$2" "$3-$p" "$THREADS" &
        LOADS+=($!)
        PIDS+=($!)
    done
}

stop_load() {
    for pid in "${LOADS[@]}"; do
        kill -9 "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
}

# recover: what the next `recplay record` on the directory does first;
# prints the seconds it took to be recording again.
recover() {
    local port=$1 log=$2 t0
    t0=$(now)
    start_recplay "$port" "$log"
    local t1
    t1=$(now)
    kill -INT "$REC_PID"
    wait "$REC_PID" 2>/dev/null || true
    echo "$t1 - $t0" | bc -l
}

totals=(0 0 0 0 0 0)
printf '%5s %8s %6s %7s %10s %7s %9s %10s\n' round received files corrupt duplicates missing leftovers recover_s
for round in $(seq "$ROUNDS"); do
    port=$((BASE_PORT + 10 + round))
    start_recplay "$port" "$WORK/rec-$round.log"
    pid=$REC_PID
    set_dir=$REC_SET
    received=$WORK/received-$round
    start_load "$port" "$received" "$round"
    sleep "$(python3 -c 'import random; print(round(random.uniform(0.5, 3.0), 2))')"
    kill -9 "$pid"
    wait "$pid" 2>/dev/null || true
    sleep 0.3
    stop_load
    secs=$(recover "$((port + 100))" "$WORK/recover-$round.log")
    read -r got files corrupt dup missing left < <(python3 "$HERE/check.py" "$received" "$set_dir")
    printf '%5s %8s %6s %7s %10s %7s %9s %10.3f\n' "$round" "$got" "$files" "$corrupt" "$dup" "$missing" "$left" "$secs"
    for i in 0 1 2 3 4 5; do
        v=$(echo "$got $files $corrupt $dup $missing $left" | cut -d' ' -f$((i + 1)))
        totals[i]=$((totals[i] + v))
    done
done
printf '%5s %8s %6s %7s %10s %7s %9s\n' total "${totals[@]}"

echo
echo "SIGINT until every test file exists (${LOAD_SECONDS}s of load first):"
port=$((BASE_PORT + 300))
start_recplay "$port" "$WORK/sigint.log"
start_load "$port" "$WORK/received-sigint" sigint
sleep "$LOAD_SECONDS"
t0=$(now)
kill -INT "$REC_PID"
wait "$REC_PID" 2>/dev/null || true
t1=$(now)
stop_load
files=$(find "$REC_SET/tests" -name '*.yaml' | wc -l)
printf '  %d test files, %.3f s from SIGINT to exit, journal left: %s\n' \
    "$files" "$(echo "$t1 - $t0" | bc -l)" "$(ls -A "$REC_SET" | grep -c '^\.' || true)"

echo
echo "materializer throughput (recovery of a journal whose test files were removed):"
port=$((BASE_PORT + 400))
start_recplay "$port" "$WORK/rate.log"
start_load "$port" "$WORK/received-rate" rate
sleep "$LOAD_SECONDS"
kill -9 "$REC_PID"
wait "$REC_PID" 2>/dev/null || true
stop_load
find "$REC_SET/tests" -name '*.yaml' -delete
secs=$(recover "$((port + 1))" "$WORK/rate-recover.log")
files=$(find "$REC_SET/tests" -name '*.yaml' | wc -l)
printf '  %d test files in %.3f s: %.0f files/s\n' "$files" "$secs" "$(echo "$files / $secs" | bc -l)"
