#!/usr/bin/env bash
# pgbench select-only TPS in one run: direct to PostgreSQL, through
# `recplay record`, and through pgbouncer (session pooling), 10 clients,
# -M simple and -M extended. Prints a Markdown table with ratios measured
# against the baselines of this same run, then each round's own ratio.
#
# The machine's speed drifts from second to second, so each round runs the
# three targets back to back for a short while (pgbouncer and recplay in
# alternating order), and the recplay / pgbouncer column is the geometric
# mean of the rounds' own ratios, with a 95 % interval from their spread:
# many short rounds pair the two proxies more closely than a few long ones.
#
# CALIBRATE=1 puts a second, identical pgbouncer where recplay would be:
# the ratio it reports (true value 1) shows how far the machine's drift
# alone moves the estimate.
#
# Needs: PostgreSQL 15 server binaries, pgbench, pgbouncer (Debian packages
# postgresql-15, postgresql-client-15, pgbouncer) and a release build
# (`cargo build --release --bin recplay`). Runs as any user; as root, the
# server and pgbouncer run as the `postgres` OS user.
#
# Environment: DURATION (seconds per run, default 1), CLIENTS (default 10),
# THREADS (pgbench -j, default 2), SCALE (pgbench -i -s, default 1), ROUNDS
# (interleaved rounds per mode, default 40), KEPLOY_DIR (where recplay
# writes mocks.yaml, default inside the scratch directory; a tmpfs path
# such as /dev/shm/recplay-bench-pg tells the proxy's cost from the
# disk's), CALIBRATE (see above).
set -euo pipefail

DURATION=${DURATION:-1}
CLIENTS=${CLIENTS:-10}
THREADS=${THREADS:-2}
SCALE=${SCALE:-1}
ROUNDS=${ROUNDS:-40}
CALIBRATE=${CALIBRATE:-}

root=$(cd "$(dirname "$0")/../.." && pwd)
recplay="$root/target/release/recplay"
[ -n "$CALIBRATE" ] || [ -x "$recplay" ] || { echo "build first: cargo build --release --bin recplay" >&2; exit 2; }

pgbin=""
for d in /usr/lib/postgresql/15/bin /usr/lib/postgresql/16/bin; do
    [ -x "$d/initdb" ] && { pgbin=$d; break; }
done
[ -n "$pgbin" ] || { echo "PostgreSQL server binaries not found" >&2; exit 2; }
pgbench=$(command -v pgbench || echo "$pgbin/pgbench")
pgbouncer=$(command -v pgbouncer || echo /usr/sbin/pgbouncer)
[ -x "$pgbouncer" ] || { echo "pgbouncer not found: apt-get install -y pgbouncer" >&2; exit 2; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

work=$(mktemp -d /tmp/recplay-bench-pg.XXXXXX)
as_owner=()
if [ "$(id -u)" = 0 ]; then
    chown postgres:postgres "$work"
    as_owner=(runuser -u postgres --)
fi
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    "${as_owner[@]}" "$pgbin/pg_ctl" -D "$work/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$work" "${KEPLOY_DIR:-}"
}
trap cleanup EXIT

keploy=${KEPLOY_DIR:-$work/keploy}
pg_port=$(free_port)
rec_port=$(free_port)
bouncer_port=$(free_port)

"${as_owner[@]}" "$pgbin/initdb" -D "$work/data" -U postgres --auth=trust --no-sync -E UTF8 --locale=C >/dev/null
"${as_owner[@]}" "$pgbin/pg_ctl" -D "$work/data" -l "$work/pg.log" -w \
    -o "-c listen_addresses=127.0.0.1 -c port=$pg_port -c unix_socket_directories=$work -c fsync=off -c max_connections=100" \
    start >/dev/null
export PGSSLMODE=disable
"$pgbench" -i -q -s "$SCALE" -h 127.0.0.1 -p "$pg_port" -U postgres postgres >/dev/null 2>&1

if [ -z "$CALIBRATE" ]; then
    # recplay record, PostgreSQL only, into a scratch test-set directory.
    "$recplay" record --path "$keploy" --pg-listen "127.0.0.1:$rec_port" \
        --pg-upstream "127.0.0.1:$pg_port" --grace 120 2>"$work/recplay.log" &
    recplay_pid=$!
    pids+=($recplay_pid)
fi

cat >"$work/pgbouncer.ini" <<INI
[databases]
postgres = host=127.0.0.1 port=$pg_port dbname=postgres
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $bouncer_port
unix_socket_dir =
auth_type = trust
auth_file = $work/userlist.txt
pool_mode = session
max_client_conn = 100
default_pool_size = 20
logfile = $work/pgbouncer.log
pidfile = $work/pgbouncer.pid
INI
echo '"postgres" ""' >"$work/userlist.txt"
[ "$(id -u)" = 0 ] && chown postgres:postgres "$work/pgbouncer.ini" "$work/userlist.txt"
"${as_owner[@]}" "$pgbouncer" "$work/pgbouncer.ini" >/dev/null 2>&1 &
pids+=($!)
if [ -n "$CALIBRATE" ]; then
    # The twin: the same configuration on recplay's port.
    sed -e "s/^listen_port = .*/listen_port = $rec_port/" -e "s/pgbouncer\./twin./" \
        "$work/pgbouncer.ini" >"$work/twin.ini"
    [ "$(id -u)" = 0 ] && chown postgres:postgres "$work/twin.ini"
    "${as_owner[@]}" "$pgbouncer" "$work/twin.ini" >/dev/null 2>&1 &
    pids+=($!)
fi

wait_port() {
    for _ in $(seq 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    echo "nothing listens on port $1" >&2
    exit 1
}
wait_port "$rec_port"
wait_port "$bouncer_port"

tps() { # port mode
    local out
    out=$("$pgbench" -n -S -c "$CLIENTS" -j "$THREADS" -T "$DURATION" -M "$2" \
        -h 127.0.0.1 -p "$1" -U postgres postgres 2>&1) || { echo "$out" >&2; exit 1; }
    echo "$out" | sed -n 's/^tps = \([0-9.]*\) (without initial connection time)/\1/p'
}

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

# Geometric mean of ratios and its 95 % interval (two standard errors of
# the mean logarithm either side).
geomean_interval() {
    tr ' ' '\n' | grep -v '^$' | awk '{ l = log($1); s += l; q += l * l; n++ }
        END {
            m = s / n; sd = n > 1 ? sqrt((q - n * m * m) / (n - 1)) : 0; se = sd / sqrt(n)
            printf "%.2f | %.2f-%.2f\n", exp(m), exp(m - 1.96 * se), exp(m + 1.96 * se)
        }'
}

second="recplay record" short=recplay
[ -z "$CALIBRATE" ] || second="pgbouncer twin" short=twin
echo "pgbench -S, $CLIENTS clients, $THREADS threads, ${DURATION}s per run, $ROUNDS rounds," \
    "scale $SCALE, $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| mode | direct TPS | pgbouncer TPS | $second TPS | $short / pgbouncer | 95 % interval | $short / direct |"
echo "|---|---:|---:|---:|---:|---:|---:|"
rec_tx=0
bouncer_tx=0
per_round=""
for mode in simple extended; do
    ds="" bs="" rs="" ratios=""
    # Rounds interleave the three targets so drifting machine load hits all
    # alike; the two proxies swap places every round, so neither always runs
    # in the other's wake (recplay's written pages are flushed to disk
    # after its runs).
    for round in $(seq "$ROUNDS"); do
        ds="$ds $(tps "$pg_port" "$mode")"
        if [ $((round % 2)) = 1 ]; then
            b=$(tps "$bouncer_port" "$mode")
            r=$(tps "$rec_port" "$mode")
        else
            r=$(tps "$rec_port" "$mode")
            b=$(tps "$bouncer_port" "$mode")
        fi
        bs="$bs $b" rs="$rs $r"
        ratios="$ratios $(awk -v r="$r" -v b="$b" 'BEGIN { printf "%.3f", r / b }')"
        rec_tx=$(awk -v t="$rec_tx" -v r="$r" -v s="$DURATION" 'BEGIN { printf "%.0f", t + r * s }')
        bouncer_tx=$(awk -v t="$bouncer_tx" -v r="$b" -v s="$DURATION" 'BEGIN { printf "%.0f", t + r * s }')
    done
    d=$(echo "$ds" | median) b=$(echo "$bs" | median) r=$(echo "$rs" | median)
    ratio=$(echo "$ratios" | geomean_interval)
    awk -v m="$mode" -v d="$d" -v b="$b" -v r="$r" -v q="$ratio" \
        'BEGIN { printf "| %s | %.0f | %.0f | %.0f | %s | %.2f |\n", m, d, b, r, q, r / d }'
    per_round="$per_round
$mode:$ratios"
done
# Each round's own ratio: the two targets ran a second apart, so their
# spread shows how far the machine's drift moves a single measurement.
echo
echo "TPS columns: medians over the rounds. $short / pgbouncer by round:$per_round"
[ -z "$CALIBRATE" ] || exit 0
transactions=$rec_tx

cpu_seconds() { # pid: user+system CPU seconds used so far
    awk -v hz="$(getconf CLK_TCK)" '{ printf "%.1f", ($14 + $15) / hz }' "/proc/$1/stat"
}
bouncer_pid=$(cat "$work/pgbouncer.pid" 2>/dev/null || echo "")
rc=$(cpu_seconds "$recplay_pid")
bc=$( [ -n "$bouncer_pid" ] && cpu_seconds "$bouncer_pid" || echo 0)
echo
awk -v rc="$rc" -v bc="$bc" -v rt="$rec_tx" -v bt="$bouncer_tx" 'BEGIN {
    printf "Proxy CPU per transaction: recplay record %.0f us (%.1f s for %d), pgbouncer %.0f us (%.1f s for %d).\n",
        rc / rt * 1e6, rc, rt, bc / bt * 1e6, bc, bt }'
# Stop recording (it finishes writing what it holds) before counting.
kill -TERM "$recplay_pid"
wait "$recplay_pid" || true
mocks=$(cat "$keploy"/test-set-*/mocks.yaml | grep -c '^---$' || true)
size=$(du -sh "$keploy" | cut -f1)
echo
echo "recplay wrote $mocks mocks ($size) for about $transactions transactions (one mock per"
echo "select plus one per connection start-up)."
