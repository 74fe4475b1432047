#!/usr/bin/env bash
# Per-test coverage cost on a Django + Django REST framework app, by
# coverage.py engine, in one run.
#
# The app (bench/coverage/django_app: a ModelSerializer with a nested
# serializer and a method field, generic list and detail views, SQLite) is
# copied to a scratch directory, seeded, and 121 requests to it are recorded
# through `recplay record`. Then `recplay test` replays them in interleaved
# rounds: without coverage; with coverage.py's C tracer, lines and
# branches (the agent's default with branches on 3.11 and older and on
# 3.14+; RECPLAY_COVERAGE_ENGINE=ctrace); the same, lines only
# (RECPLAY_COVERAGE_ENGINE=ctrace); and, where the Python has sys.monitoring
# (3.12+), the agent's own "monitor" engine, lines and branches
# (RECPLAY_COVERAGE_ENGINE=monitor, its default with branches on 3.12 and
# 3.13) and lines only (its default for lines there), and coverage.py's
# COVERAGE_CORE=sysmon, lines only.
# Per-test and snapshot times come from recplay's debug log.
#
# Usage: bench/coverage/django.sh [ROUNDS]      (default 3)
#   PYTHON=/path/to/python3.13 bench/coverage/django.sh
# Needs: python3 with venv, PyPI (Django, djangorestframework, gunicorn,
# coverage), cargo.
set -euo pipefail

ROUNDS=${1:-3}
PYTHON=${PYTHON:-python3}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
WORK=$(mktemp -d)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { "$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() {
    for _ in $(seq 1 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    echo "nothing listens on port $1" >&2
    exit 1
}

echo "building recplay (release)..." >&2
(cd "$ROOT" && cargo build --release --quiet --bin recplay)
RECPLAY=$ROOT/target/release/recplay

echo "making the venv with $PYTHON..." >&2
"$PYTHON" -m venv "$WORK/venv"
"$WORK/venv/bin/pip" install -q --disable-pip-version-check django djangorestframework gunicorn coverage
cp -r "$ROOT/bench/coverage/django_app" "$WORK/app"
export BENCH_DB=$WORK/db.sqlite3
(cd "$WORK/app" && "$WORK/venv/bin/python" seed.py)

APP_PORT=$(free_port)
PROXY_PORT=$(free_port)
APP_CMD="cd $WORK/app && exec $WORK/venv/bin/gunicorn -w 1 -b 127.0.0.1:$APP_PORT wsgi:application"

sh -c "$APP_CMD" >"$WORK/record-app.log" 2>&1 &
PIDS+=($!)
wait_port "$APP_PORT"
"$RECPLAY" record --path "$WORK/keploy" --http-listen "127.0.0.1:$PROXY_PORT" \
    --http-upstream "http://127.0.0.1:$APP_PORT" >"$WORK/record.log" 2>&1 &
RECORDER=$!
wait_port "$PROXY_PORT"
get() { "$PYTHON" -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1]).read()' "$1"; }
get "http://127.0.0.1:$PROXY_PORT/health"
for i in $(seq 1 60); do
    get "http://127.0.0.1:$PROXY_PORT/items/?limit=$((i % 40 + 1))"
    get "http://127.0.0.1:$PROXY_PORT/items/$((i % 200 + 1))/"
done
kill -INT "$RECORDER"
wait "$RECORDER"
kill "${PIDS[0]}"
wait "${PIDS[0]}" 2>/dev/null || true
PIDS=()

CONFIGS=(off tracer-branch tracer-lines)
if "$WORK/venv/bin/python" -c 'import sys; sys.exit(sys.version_info < (3, 12))'; then
    CONFIGS+=(monitor-branch monitor-lines sysmon-lines)
fi

replay() { # config round
    local flags=() vars=()
    case $1 in
        off) ;;
        tracer-branch) flags=(--coverage) vars=(RECPLAY_COVERAGE_ENGINE=ctrace) ;;
        monitor-branch) flags=(--coverage) vars=(RECPLAY_COVERAGE_ENGINE=monitor) ;;
        tracer-lines) flags=(--coverage) vars=(RECPLAY_COVERAGE_BRANCH=0 RECPLAY_COVERAGE_ENGINE=ctrace) ;;
        monitor-lines) flags=(--coverage) vars=(RECPLAY_COVERAGE_BRANCH=0) ;;
        sysmon-lines) flags=(--coverage) vars=(RECPLAY_COVERAGE_BRANCH=0 COVERAGE_CORE=sysmon) ;;
    esac
    env -u COVERAGE_CORE -u RECPLAY_COVERAGE_ENGINE "${vars[@]}" "$RECPLAY" test -v --path "$WORK/keploy" \
        --config "$ROOT/keploy.yml.template" --http-target "http://127.0.0.1:$APP_PORT" \
        -c "$APP_CMD" "${flags[@]}" >"$WORK/out-$1-$2.txt" 2>"$WORK/log-$1-$2.txt" ||
        { tail -n 20 "$WORK/out-$1-$2.txt" >&2; exit 1; }
}

for round in $(seq 1 "$ROUNDS"); do
    for config in "${CONFIGS[@]}"; do
        replay "$config" "$round"
    done
    echo "round $round/$ROUNDS done" >&2
done

"$WORK/venv/bin/python" - "$WORK" "$ROUNDS" "${CONFIGS[@]}" <<'PY'
import re, statistics as st, sys, platform
import django, coverage
work, rounds, configs = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
UNIT = {"ns": 1e-6, "µs": 1e-3, "ms": 1.0, "s": 1e3}

def ms(text):
    m = re.match(r"([0-9.]+)(ns|µs|ms|s)$", text)
    return float(m.group(1)) * UNIT[m.group(2)]

rows = {}
for config in configs:
    medians, sums, snaps = [], [], []
    for r in range(1, rounds + 1):
        log = re.sub(r"\x1b\[[0-9;]*m", "", open(f"{work}/log-{config}-{r}.txt", encoding="utf-8").read())
        tests = [ms(t) for t in re.findall(r"test replayed elapsed=(\S+) test=", log)]
        snaps += [ms(t) for t in re.findall(r"coverage snapshot elapsed=(\S+)", log)]
        medians.append(st.median(tests))
        sums.append(sum(tests[2:]))
    rows[config] = (st.median(medians), st.median(sums), st.median(snaps) if snaps else None, len(tests))

off = rows["off"]
print(f"\nDjango {django.__version__} + DRF, Python {platform.python_version()}, coverage.py {coverage.__version__}, "
      f"{rows['off'][3]} tests, {rounds} interleaved rounds (medians)\n")
print("| coverage | median test (ms) | tests after the first two (ms) | added | snapshot median (ms) |")
print("|---|---:|---:|---:|---:|")
for config, (median, total, snap, _) in rows.items():
    added = "" if config == "off" else f"{(total / off[1] - 1) * 100:+.0f}%"
    print(f"| {config} | {median:.2f} | {total:.0f} | {added} | {'' if snap is None else f'{snap:.2f}'} |")
PY
