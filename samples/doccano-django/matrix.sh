#!/usr/bin/env bash
# The compat matrix on doccano: recordings and replays by this build and by
# the latest release must work with each other.
#
#   cell 1  record: this build     replay: this build
#   cell 2  record: latest release replay: this build
#   cell 3  record: this build     replay: latest release
#
# A cell passes only when every test of its replay passes (flow.sh replay's
# checks, resourcetype included). The latest release is the commit named in
# LATEST_RELEASE (built in a git worktree under .work/ with its own target
# dir), or the binary in RECPLAY_RELEASE_BIN. This build is RECPLAY_BIN, or a
# cargo build of this checkout. Prints a 3-row table; exits 0 only when all
# three cells pass.
set -euo pipefail

SAMPLE_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SAMPLE_DIR/../.." && pwd)
WORK=${DOCCANO_WORK:-$SAMPLE_DIR/.work}
FLOW=$SAMPLE_DIR/flow.sh
M=$WORK/matrix

log() { printf '[matrix %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { printf '[matrix] error: %s\n' "$*" >&2; exit 1; }

build_bin() {
    if [ -n "${RECPLAY_BIN:-}" ]; then
        [ -x "$RECPLAY_BIN" ] || die "RECPLAY_BIN=$RECPLAY_BIN is not an executable"
        echo "$RECPLAY_BIN"
        return
    fi
    log "building this checkout (cargo build)"
    (cd "$REPO_ROOT" && cargo build --quiet --bin recplay) >&2 || die "cargo build of this checkout failed"
    echo "${CARGO_TARGET_DIR:-$REPO_ROOT/target}/debug/recplay"
}

release_bin() {
    if [ -n "${RECPLAY_RELEASE_BIN:-}" ]; then
        [ -x "$RECPLAY_RELEASE_BIN" ] || die "RECPLAY_RELEASE_BIN=$RECPLAY_RELEASE_BIN is not an executable"
        echo "$RECPLAY_RELEASE_BIN"
        return
    fi
    local ref sha src=$WORK/release-src target=$WORK/release-target
    ref=$(sed -e 's/#.*//' -e 's/^[[:space:]]*//' -e 's/[[:space:]]*$//' "$SAMPLE_DIR/LATEST_RELEASE" 2>/dev/null |
        grep -v '^$' | head -1 || true)
    [ -n "$ref" ] || die "samples/doccano-django/LATEST_RELEASE names no release commit: write the release's tag or commit hash on its first non-comment line, or set RECPLAY_RELEASE_BIN=/path/to/recplay"
    sha=$(git -C "$REPO_ROOT" rev-parse --verify --quiet "$ref^{commit}") ||
        die "LATEST_RELEASE names '$ref', which is not a commit of this repository (fetch it, or fix the file)"
    if [ -d "$src" ]; then
        git -C "$REPO_ROOT" worktree remove --force "$src" >/dev/null 2>&1 || rm -rf "$src"
    fi
    git -C "$REPO_ROOT" worktree prune
    if [ ! -d "$src" ]; then
        log "checking out the release $ref ($sha) in $src"
        git -C "$REPO_ROOT" worktree add --detach "$src" "$sha" >/dev/null ||
            die "git worktree add of $sha failed"
    fi
    log "building the release $ref (target dir $target)"
    CARGO_TARGET_DIR=$target cargo build --quiet --manifest-path "$src/Cargo.toml" --bin recplay >&2 ||
        die "cargo build of the release $ref failed"
    # The binary is all the matrix needs; the target dir stays as a cache.
    git -C "$REPO_ROOT" worktree remove --force "$src" >/dev/null 2>&1 || true
    echo "$target/debug/recplay"
}

record_with() { # name bin -> 0 when the recording is complete
    local dir=$M/rec-$1
    rm -rf "$dir"
    KEPLOY_DIR=$dir RECPLAY_BIN=$2 "$FLOW" record
}

replay_cell() { # cell recording bin [fill]
    local dir=$M/cell-$1
    rm -rf "$dir"
    mkdir -p "$dir"
    cp -r "$M/rec-$2"/test-set-* "$dir"/ || return 1
    # This build's recordings hold placeholders for the token and the
    # annotator's password; the release predates them, so its cell gets a
    # copy with the values written in (what it would have recorded).
    if [ "${4:-}" = fill ]; then
        "$FLOW" fill-secrets "$dir" || return 1
    fi
    KEPLOY_DIR=$dir RECPLAY_BIN=$3 "$FLOW" replay --no-coverage
}

main() {
    local t0=$SECONDS build release
    # The release first: a missing or wrong LATEST_RELEASE fails at once.
    release=$(release_bin)
    build=$(build_bin)
    log "this build: $build"
    log "latest release: $release"
    mkdir -p "$M"
    "$FLOW" setup

    local rec_build=FAIL rec_release=FAIL
    record_with build "$build" && rec_build=ok
    record_with release "$release" && rec_release=ok

    local -a names=("this build" "latest release" "this build")
    local -a replayers=("this build" "this build" "latest release")
    local -a recs=(build release build)
    local -a bins=("$build" "$build" "$release")
    local -a fills=("" "" fill)
    local -a results=() secs=()
    local i s
    for i in 0 1 2; do
        s=$SECONDS
        local rec_ok=$rec_build
        [ "${recs[$i]}" = release ] && rec_ok=$rec_release
        if [ "$rec_ok" = ok ] && replay_cell "$((i + 1))" "${recs[$i]}" "${bins[$i]}" "${fills[$i]}"; then
            results+=(PASS)
        elif [ "$rec_ok" != ok ]; then
            results+=("FAIL (recording failed)")
        else
            results+=(FAIL)
        fi
        secs+=($((SECONDS - s)))
    done

    printf '\n%-6s %-16s %-16s %s\n' cell record replay result
    for i in 0 1 2; do
        printf '%-6s %-16s %-16s %s (%ss)\n' "$((i + 1))" "${names[$i]}" "${replayers[$i]}" "${results[$i]}" "${secs[$i]}"
    done
    log "matrix done in $((SECONDS - t0))s"
    for i in 0 1 2; do
        [ "${results[$i]}" = PASS ] || exit 1
    done
}

main "$@"
