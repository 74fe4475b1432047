#!/usr/bin/env bash
# Crash safety of HTTP and PostgreSQL recording together: ROUNDS rounds of
# SIGKILL at a random moment while HTTP traffic and PostgreSQL queries flow
# through one `recplay record` at once, each followed by the recovery the
# next command on the directory runs. Counts, from the clients' side, every
# HTTP response received in full and every query whose whole answer
# arrived, and checks the recovered test set: test files and mocks.yaml
# documents that are corrupt, duplicated or missing, and leftover files
# (journals, temp files: the leftovers column counts the test set's
# hidden files and those in its tests folder).
#
# Needs: python3 with PyYAML, cargo, PostgreSQL server binaries (initdb,
# pg_ctl; Debian's postgresql-15). The clients are bench/crash/load.py
# (HTTP) and bench/crash/load_pg.py (PostgreSQL, no driver needed).
#
# Usage: bench/crash/run_pg.sh
#   ROUNDS=20 PROCS=2 THREADS=4 PG_PROCS=2 PG_THREADS=4 BASE_PORT=18900 bench/crash/run_pg.sh
set -euo pipefail

ROUNDS=${ROUNDS:-20}
PROCS=${PROCS:-2}
THREADS=${THREADS:-4}
PG_PROCS=${PG_PROCS:-2}
PG_THREADS=${PG_THREADS:-4}
BASE_PORT=${BASE_PORT:-18900}
UPSTREAM_PORT=$BASE_PORT
PG_PORT=$((BASE_PORT + 1))

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
python3 -c 'import yaml' 2>/dev/null || { echo "needs PyYAML: pip install pyyaml" >&2; exit 1; }
pgbin=""
for d in /usr/lib/postgresql/15/bin /usr/lib/postgresql/16/bin; do
    [ -x "$d/initdb" ] && { pgbin=$d; break; }
done
[ -n "$pgbin" ] || { echo "PostgreSQL server binaries not found" >&2; exit 2; }

WORK=$(mktemp -d)
KEPLOY=$WORK/keploy
as_owner=()
if [ "$(id -u)" = 0 ]; then
    chown postgres:postgres "$WORK"
    as_owner=(runuser -u postgres --)
fi
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do
        kill -9 "$pid" 2>/dev/null || true
    done
    wait 2>/dev/null || true
    "${as_owner[@]}" "$pgbin/pg_ctl" -D "$WORK/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT

echo "building recplay (release)..." >&2
(cd "$ROOT" && cargo build --release --quiet --bin recplay)
RECPLAY=$ROOT/target/release/recplay

"${as_owner[@]}" "$pgbin/initdb" -D "$WORK/data" -U postgres --auth=trust --no-sync -E UTF8 --locale=C >/dev/null
"${as_owner[@]}" "$pgbin/pg_ctl" -D "$WORK/data" -l "$WORK/pg.log" -w \
    -o "-c listen_addresses=127.0.0.1 -c port=$PG_PORT -c unix_socket_directories=$WORK -c fsync=off -c max_connections=100" \
    start >/dev/null

python3 "$HERE/upstream.py" "$UPSTREAM_PORT" &
PIDS+=($!)
for _ in $(seq 100); do
    curl -s -o /dev/null "http://127.0.0.1:$UPSTREAM_PORT/" && break
    sleep 0.05
done

# start_recplay HTTP_PORT PG_PORT LOG: starts `recplay record`, waits until
# it records, sets REC_PID and REC_SET (the test set it records into).
start_recplay() {
    local port=$1 pg_listen=$2 log=$3
    "$RECPLAY" record --path "$KEPLOY" --http-listen "127.0.0.1:$port" \
        --http-upstream "http://127.0.0.1:$UPSTREAM_PORT" \
        --pg-listen "127.0.0.1:$pg_listen" --pg-upstream "127.0.0.1:$PG_PORT" \
        >"$log" 2>"$log.err" &
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

# start_load HTTP_PORT PG_PORT HTTP_OUT PG_OUT TAG: the client processes;
# sets LOADS.
start_load() {
    LOADS=()
    for p in $(seq "$PROCS"); do
        python3 "$HERE/load.py" 127.0.0.1 "$1" "$3" "$5-$p" "$THREADS" &
        LOADS+=($!)
        PIDS+=($!)
    done
    for p in $(seq "$PG_PROCS"); do
        python3 "$HERE/load_pg.py" 127.0.0.1 "$2" "$4" "$5-$p" "$PG_THREADS" &
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

http_totals=(0 0 0 0 0 0)
pg_totals=(0 0 0 0 0 0)
add() { # add ARRAY_NAME VALUE...: adds each value to the array's entry
    local -n sums=$1
    shift
    local i=0 v
    for v in "$@"; do
        sums[i]=$((sums[i] + v))
        i=$((i + 1))
    done
}
printf '%5s | %8s %6s %7s %4s %7s | %8s %6s %7s %4s %7s | %9s\n' \
    round received tests corrupt dup missing answered mocks corrupt dup missing leftovers
for round in $(seq "$ROUNDS"); do
    port=$((BASE_PORT + 10 + round))
    pg_listen=$((BASE_PORT + 60 + round))
    start_recplay "$port" "$pg_listen" "$WORK/rec-$round.log"
    pid=$REC_PID
    set_dir=$REC_SET
    tag="k$round"
    start_load "$port" "$pg_listen" "$WORK/received-$round" "$WORK/answered-$round" "$tag"
    sleep "$(python3 -c 'import random; print(round(random.uniform(0.5, 3.0), 2))')"
    kill -9 "$pid"
    wait "$pid" 2>/dev/null || true
    sleep 0.3
    stop_load
    # What the next `recplay record` on the directory does first.
    start_recplay "$((port + 100))" "$((pg_listen + 100))" "$WORK/recover-$round.log"
    kill -INT "$REC_PID"
    wait "$REC_PID" 2>/dev/null || true
    read -r h_got h_files h_corrupt h_dup h_missing h_left \
        < <(python3 "$HERE/check.py" "$WORK/received-$round" "$set_dir")
    read -r p_got p_mocks p_corrupt p_dup p_missing p_left \
        < <(python3 "$HERE/check_pg.py" "$WORK/answered-$round" "$set_dir" "$tag")
    printf '%5s | %8s %6s %7s %4s %7s | %8s %6s %7s %4s %7s | %9s\n' "$round" \
        "$h_got" "$h_files" "$h_corrupt" "$h_dup" "$h_missing" \
        "$p_got" "$p_mocks" "$p_corrupt" "$p_dup" "$p_missing" "$h_left"
    add http_totals "$h_got" "$h_files" "$h_corrupt" "$h_dup" "$h_missing" "$h_left"
    add pg_totals "$p_got" "$p_mocks" "$p_corrupt" "$p_dup" "$p_missing" "$p_left"
done
printf '%5s | %8s %6s %7s %4s %7s | %8s %6s %7s %4s %7s | %9s\n' total \
    "${http_totals[@]:0:5}" "${pg_totals[@]:0:5}" "${http_totals[5]}"
