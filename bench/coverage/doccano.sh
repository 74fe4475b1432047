#!/usr/bin/env bash
# Coverage cost on the doccano sample: replays the sample's recorded test set
# with coverage on and off, interleaved, and reports from recplay's own debug
# log (`test replayed` and `coverage snapshot` lines):
#   - snapshot cost per test (all gunicorn processes), median and p90;
#   - replay time of the tests, on vs off: the median test (the steady
#     figure), the whole loop, and the tests after the first two (the first
#     requests pay each worker's cold start, which the coverage warm-up
#     request moves out of the loop; lazy imports of later views make this
#     sum swing between runs);
#   - the whole `flow.sh replay` wall time (app start-up included);
#   - a third mode, `coverage run`'s whole-run measurement of the same
#     replay (no per-test snapshots, every gunicorn process measured by
#     coverage.py as `coverage run` does), the floor that per-test coverage
#     is compared with: the last column is per-test ÷ whole-run.
#
# Usage: bench/coverage/doccano.sh [ROUNDS]     (default 4)
# Records a test set first when the sample has none (flow.sh setup + record).
set -euo pipefail

ROUNDS=${1:-4}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
FLOW=$ROOT/samples/doccano-django/flow.sh
WORK=${DOCCANO_WORK:-$ROOT/samples/doccano-django/.work}
KEPLOY=${KEPLOY_DIR:-$WORK/keploy}
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT

echo "building recplay (release)..." >&2
(cd "$ROOT" && cargo build --release --quiet --bin recplay)
export RECPLAY_BIN=$ROOT/target/release/recplay RUST_LOG=recplay=debug NO_COLOR=1

if ! ls "$KEPLOY"/test-set-*/tests >/dev/null 2>&1; then
    bash "$FLOW" setup >&2
    bash "$FLOW" record >&2
fi
SET=$(cat "$WORK/last-test-set" 2>/dev/null || ls "$KEPLOY" | grep '^test-set-' | sort -V | tail -1)

"$WORK/venv/bin/python" -c 'import coverage, sys; sys.exit(coverage.version_info < (7, 10, 4))' ||
    { echo "the sample's venv needs coverage 7.10.4 or later (patch = _exit)" >&2; exit 1; }
# The whole-run mode: coverage.py started in every gunicorn process (worker
# exits included: gunicorn workers end with os._exit, hence `patch = _exit`,
# which needs coverage 7.10.4 or later), measuring doccano's backend only.
BACKEND=$WORK/app/backend
mkdir -p "$OUT/whole-run"
cat >"$OUT/whole-run/coveragerc" <<RC
[run]
source = $BACKEND
parallel = True
data_file = $OUT/whole-run/.coverage
patch = _exit
RC
echo 'import coverage; coverage.process_startup()' >"$OUT/whole-run/sitecustomize.py"

for round in $(seq "$ROUNDS"); do
    for mode in on off whole; do
        flags=(--test-sets "$SET")
        [ "$mode" = on ] || flags+=(--no-coverage)
        rc=""
        [ "$mode" = whole ] && rc=$OUT/whole-run/coveragerc
        start=$(date +%s.%N)
        DOCCANO_COVERAGE_RC=$rc bash "$FLOW" replay "${flags[@]}" >"$OUT/flow-$mode-$round.txt" 2>&1 ||
            { cat "$OUT/flow-$mode-$round.txt" >&2; exit 1; }
        end=$(date +%s.%N)
        cp "$WORK/replay.log" "$OUT/replay-$mode-$round.log"
        echo "$end - $start" | bc >"$OUT/wall-$mode-$round.txt"
        echo "round $round, coverage $mode: done" >&2
    done
done

# Each worker of each whole-run round leaves a data file: none means the
# mode measured nothing and its figures would be the uninstrumented ones.
ls "$OUT"/whole-run/.coverage.* >/dev/null 2>&1 ||
    { echo "coverage run mode wrote no data: coverage.py did not start in gunicorn" >&2; exit 1; }

python3 - "$OUT" "$ROUNDS" "$SET" "$(nproc)" <<'PY'
import re, statistics as st, sys
out, rounds, test_set, cpus = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
UNIT = {"ns": 1e-6, "µs": 1e-3, "ms": 1.0, "s": 1e3}

def ms(text):
    m = re.match(r"([0-9.]+)(ns|µs|ms|s)$", text)
    return float(m.group(1)) * UNIT[m.group(2)]

def figures(mode):
    loops, warm, walls, snaps, medians = [], [], [], [], []
    for r in range(1, rounds + 1):
        log = open(f"{out}/replay-{mode}-{r}.log", encoding="utf-8").read()
        tests = [ms(t) for t in re.findall(r"test replayed elapsed=(\S+) test=", log)]
        snaps += [ms(t) for t in re.findall(r"coverage snapshot elapsed=(\S+)", log)]
        loops.append(sum(tests))
        warm.append(sum(tests[2:]))
        medians.append(st.median(tests))
        walls.append(float(open(f"{out}/wall-{mode}-{r}.txt").read()) * 1e3)
    return dict(loop=st.median(loops), warm=st.median(warm), wall=st.median(walls),
                per_test=st.median(medians), snaps=snaps, tests=len(tests))

on, off, whole = figures("on"), figures("off"), figures("whole")
snaps = sorted(on["snaps"])
print(f"\ndoccano {test_set}: {on['tests']} tests, {rounds} interleaved rounds (medians), {cpus} CPUs\n")
print("| measure | coverage off | per-test coverage | added | coverage run | added | per-test ÷ coverage run |")
print("|---|---:|---:|---:|---:|---:|---:|")
for key, label in [("per_test", "median test (ms)"), ("warm", "tests after the first two (ms)"),
                   ("loop", "all tests, incl. cold start (ms)"), ("wall", "whole flow.sh replay (ms)")]:
    print(f"| {label} | {off[key]:.1f} | {on[key]:.1f} | {(on[key] / off[key] - 1) * 100:+.0f}% "
          f"| {whole[key]:.1f} | {(whole[key] / off[key] - 1) * 100:+.0f}% | {on[key] / whole[key]:.2f}x |")
print(f"\nsnapshot per test: median {st.median(snaps):.2f} ms, p90 {snaps[int(len(snaps) * 0.9)]:.2f} ms, "
      f"max {snaps[-1]:.1f} ms over {len(snaps)} snapshots")
PY
