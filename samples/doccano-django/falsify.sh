#!/usr/bin/env bash
# The sample-level falsification: the same recording replayed with the
# default matcher must pass, and with the test-only collapsing matcher
# (`--pg-matcher collapse-literals`, which serves one recorded answer for
# queries that differ only in literals) must fail on the polymorphic
# project GET/PATCH tests. Exits 0 only when both hold.
#
# Uses the latest recording under .work/keploy (run `flow.sh record` first,
# or let this script do setup + record when there is none).
set -euo pipefail

SAMPLE_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
WORK=${DOCCANO_WORK:-$SAMPLE_DIR/.work}
FLOW=$SAMPLE_DIR/flow.sh
SOURCE=${KEPLOY_DIR:-$WORK/keploy}

log() { printf '[falsify %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

if [ -z "${RECPLAY_BIN:-}" ]; then
    REPO_ROOT=$(cd "$SAMPLE_DIR/../.." && pwd)
    (cd "$REPO_ROOT" && cargo build --quiet --bin recplay)
    export RECPLAY_BIN=${CARGO_TARGET_DIR:-$REPO_ROOT/target}/debug/recplay
fi

if ! compgen -G "$SOURCE/test-set-*/tests/*.yaml" >/dev/null; then
    log "no recording under $SOURCE: setup + record first"
    "$FLOW" setup
    KEPLOY_DIR=$SOURCE "$FLOW" record
fi

# Each replay writes its reports into a copy, so the recording stays clean.
run_replay() { # name, flow.sh replay options...
    local dir=$WORK/falsify/$1
    shift
    rm -rf "$dir"
    mkdir -p "$dir"
    cp -r "$SOURCE"/test-set-* "$dir"/
    KEPLOY_DIR=$dir "$FLOW" replay --no-coverage "$@"
}

default=FAIL collapse=FAIL
log "replay with the default matcher (must pass)"
run_replay default && default=PASS
log "replay with --pg-matcher collapse-literals (must fail on the polymorphic GET/PATCH tests)"
run_replay collapse --collapse && collapse=PASS

echo "default matcher passes every test:                ${default}"
echo "collapsing matcher caught on project GET/PATCH:   ${collapse}"
[ "$default" = PASS ] && [ "$collapse" = PASS ]
