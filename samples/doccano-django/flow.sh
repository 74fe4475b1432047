#!/usr/bin/env bash
# doccano 1.8.4 on PostgreSQL, recorded and replayed with recplay.
#
# Everything runs natively: a venv with doccano from PyPI, a throwaway
# PostgreSQL 15 cluster on a free 127.0.0.1 port, gunicorn with 2 workers
# when recording and 1 when replaying (DOCCANO_RECORD_WORKERS and
# DOCCANO_REPLAY_WORKERS; README.md, "Worker processes", says why).
# Run-time state (venv, cluster, logs, test sets) lives under .work/ next to
# this script (override with DOCCANO_WORK); it is git-ignored.
#
# Subcommands (see README.md for the details and timings):
#   setup                 venv + cluster + migrations + admin user (idempotent)
#   serve                 run doccano under gunicorn on the real cluster (foreground)
#   bootstrap [timeout]   log in, install the fixed token, wait for GET /v1/me = 200
#   record-traffic [url]  drive the API and check every answer
#   list-routes           the route table and the API coverage of the recorded tests
#   record                recplay record around doccano + record-traffic
#   replay [--collapse] [--no-coverage] [--test-sets LIST] [--shard I/N]
#                         recplay test with the PG mock (cluster stopped), --coverage
#   sharded [N]           replay as N shards (default 4) one after another,
#                         merge them, check the merged run as a whole and
#                         against the latest unsharded run
#   coverage              per-test and total line coverage; Cobertura + LCOV exports
#   all                   setup -> record -> replay -> coverage
#   pg-start | pg-stop    start or stop the throwaway cluster
#   fill-secrets DIR      write the token and password over their placeholders
#                         in DIR's YAML files (for a release without redaction)
set -euo pipefail

SAMPLE_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SAMPLE_DIR/../.." && pwd)
WORK=${DOCCANO_WORK:-$SAMPLE_DIR/.work}
VENV=$WORK/venv
# The cluster's directory; .work/pg may be a link to a directory under /tmp
# (see make_pg_dir), so use the resolved path.
PG_DIR=$(readlink -f "$WORK/pg" 2>/dev/null || echo "$WORK/pg")
PG_DATA=$PG_DIR/data
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
STATE=$WORK/state.env
PYTHON=${PYTHON:-python3}

DOCCANO_VERSION=1.8.4
DB_NAME=doccano
DB_USER=doccano
# A throwaway cluster bound to 127.0.0.1; the password only has to be
# non-trivial enough to exercise SCRAM through the proxy.
DB_PASSWORD=${DOCCANO_DB_PASSWORD:-doccano-sample-password}
ADMIN_USER=${DOCCANO_ADMIN_USER:-admin}
ADMIN_PASSWORD=${DOCCANO_ADMIN_PASSWORD:-doccano-admin-password}
ADMIN_EMAIL=${DOCCANO_ADMIN_EMAIL:-admin@example.com}
# The token every recorded request carries. It is written into
# authtoken_token by bootstrap so that the Authorization header and the
# token look-up query are the same at record and at replay time.
FIXED_TOKEN=${DOCCANO_FIXED_TOKEN:-5ec0ded0c0ffee5ec0ded0c0ffee5ec0ded0c0ff}
# The password record-traffic gives the annotator it signs up. Recordings
# hold a placeholder in its place (and in place of FIXED_TOKEN in the
# Authorization header); replay gets both from the secrets file that
# render_config writes next to keploy.yml.
ANNOTATOR_PASSWORD=${DOCCANO_ANNOTATOR_PASSWORD:-Zq7-wobble-Kestrel-sample}
# doccano's SECRET_KEY must not change between record and replay (it seeds
# nothing we compare, but a changing key would invalidate sessions).
SECRET_KEY=${DOCCANO_SECRET_KEY:-recplay-doccano-sample-not-secret}
KEPLOY_DIR=${KEPLOY_DIR:-$WORK/keploy}
# gunicorn workers when recording and when replaying. Each worker fills
# Django's ContentType cache lazily, so which look-ups reach the database
# depends on which worker served which request. A single worker at replay
# misses the cache only where no earlier request needed the entry, and every
# worker at record time missed there too, so each of its look-ups was
# recorded; several replay workers can ask for one that never was.
RECORD_WORKERS=${DOCCANO_RECORD_WORKERS:-2}
REPLAY_WORKERS=${DOCCANO_REPLAY_WORKERS:-1}

log() { printf '[flow %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { printf '[flow] error: %s\n' "$*" >&2; exit 1; }

free_port() {
    "$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

is_root() { [ "$(id -u)" = 0 ]; }

# initdb and postgres refuse to run as root: as root they run as the
# `postgres` OS user, in a directory that user owns.
as_pg() {
    if is_root; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

load_state() {
    [ -f "$STATE" ] || die "no $STATE: run '$0 setup' first"
    # Sets PG_PORT and APP_PORT.
    # shellcheck disable=SC1090
    . "$STATE"
    : "${PG_PORT:?$STATE lacks PG_PORT}" "${APP_PORT:?$STATE lacks APP_PORT}"
    BACKEND_DIR=$WORK/app/backend
    [ -f "$BACKEND_DIR/manage.py" ] || die "no $BACKEND_DIR: run '$0 setup' first"
}

# doccano's backend is the app's source tree, but pip puts it in
# site-packages, which coverage tools (recplay's agent included) treat as
# third-party code. Run it from a copy of its Python sources under .work/app
# instead, as doccano's own container image does with /backend; the large
# non-Python parts (the built client and collected static files) are linked.
setup_app_copy() {
    local site dest=$WORK/app/backend
    site=$("$VENV/bin/python" -c 'import backend, os; print(os.path.dirname(backend.__file__))')
    if [ -f "$dest/.doccano-version" ] && [ "$(cat "$dest/.doccano-version")" = "$DOCCANO_VERSION" ]; then
        return 0
    fi
    log "copying doccano's backend sources to $dest"
    rm -rf "$WORK/app"
    mkdir -p "$WORK/app"
    "$VENV/bin/python" - "$site" "$dest" <<'PY'
import os, shutil, sys
site, dest = sys.argv[1:]
linked = {"client", "staticfiles"}
shutil.copytree(site, dest, ignore=lambda d, names: [n for n in names if n == "__pycache__" or (d == site and n in linked)])
for name in linked:
    if os.path.exists(os.path.join(site, name)):
        os.symlink(os.path.join(site, name), os.path.join(dest, name))
PY
    echo "$DOCCANO_VERSION" >"$dest/.doccano-version"
}

# The password is not in the URL: libpq reads it from PGPASSWORD, so it
# stays out of command lines, process listings and recplay's logs.
database_url() { # host port
    echo "postgres://${DB_USER}@$1:$2/${DB_NAME}?sslmode=disable"
}

# Environment doccano reads, for a database at host:port. One line of
# NAME=value words, usable after `env`.
doccano_env() { # host port
    echo "DATABASE_URL=$(database_url "$1" "$2")" \
        "DOCCANO_HOME=$WORK/home" \
        "MEDIA_ROOT=$WORK/home/media" \
        "DJANGO_SETTINGS_MODULE=config.settings.production" \
        "SECRET_KEY=$SECRET_KEY" \
        "DEBUG=False" \
        "PYTHONUNBUFFERED=1"
}

# The gunicorn command line for doccano with its database at host:port,
# listening on 127.0.0.1:app_port, with the given number of workers.
# It starts in the backend directory: coverage agents loaded at interpreter
# start-up take the working directory as the app's source root.
#
# DOCCANO_COVERAGE_RC (bench/coverage/doccano.sh) names a coverage.py rc
# file: every gunicorn process then runs under `coverage run`'s machinery
# (a sitecustomize beside the rc file calls coverage.process_startup()), the
# whole-run baseline that per-test coverage is compared with.
gunicorn_command() { # host port app_port workers
    local whole_run=""
    [ -n "${DOCCANO_COVERAGE_RC:-}" ] &&
        whole_run="COVERAGE_PROCESS_START=$DOCCANO_COVERAGE_RC PYTHONPATH=$(dirname "$DOCCANO_COVERAGE_RC")"
    echo "cd $BACKEND_DIR && exec env $(doccano_env "$1" "$2") $whole_run $VENV/bin/gunicorn" \
        "--chdir $BACKEND_DIR --bind 127.0.0.1:$3 --workers $4 --timeout 120" \
        "--access-logfile - config.wsgi"
}

manage() {
    # shellcheck disable=SC2046
    (cd "$BACKEND_DIR" && env $(doccano_env 127.0.0.1 "$PG_PORT") "$VENV/bin/python" manage.py "$@")
}

psql_admin() {
    as_pg "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$PG_DIR" -p "$PG_PORT" -U postgres "$@"
}

pg_running() {
    [ -f "$PG_DATA/PG_VERSION" ] && as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" status >/dev/null 2>&1
}

cmd_pg_start() {
    load_state
    if pg_running; then
        return 0
    fi
    log "starting PostgreSQL on 127.0.0.1:$PG_PORT"
    as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_DIR/server.log" -w -t 60 \
        -o "-c listen_addresses=127.0.0.1 -c port=$PG_PORT -c unix_socket_directories=$PG_DIR -c fsync=off" \
        start >/dev/null || die "PostgreSQL did not start; see $PG_DIR/server.log"
}

cmd_pg_stop() {
    load_state
    if pg_running; then
        log "stopping PostgreSQL"
        as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w stop >/dev/null
    fi
}

setup_venv() {
    if [ -x "$VENV/bin/gunicorn" ] && [ -x "$VENV/bin/coverage" ] &&
        "$VENV/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('doccano') != '$DOCCANO_VERSION')" 2>/dev/null; then
        log "venv ready ($VENV)"
        return 0
    fi
    log "creating the venv with doccano==$DOCCANO_VERSION (about 1-2 minutes)"
    "$PYTHON" -m venv "$VENV"
    # doccano 1.8.4 pins neither numpy nor marshmallow from above, and the
    # current majors break it; psycopg2 must be named or it is not installed.
    # pip unpacks into TMPDIR; keeping it beside the venv means a small
    # /tmp (a tmpfs on some CI machines) cannot fail the install.
    local unpack=$WORK/pip-tmp
    mkdir -p "$unpack"
    TMPDIR=$unpack "$VENV/bin/pip" install -q --disable-pip-version-check --no-cache-dir \
        "doccano==$DOCCANO_VERSION" 'numpy<2' 'marshmallow<4' psycopg2-binary gunicorn coverage ||
        { df -h "$WORK" /tmp >&2; rm -rf "$unpack"; die "pip could not install doccano into $VENV"; }
    rm -rf "$unpack"
}

remove_pg_dir() {
    [ -L "$WORK/pg" ] && rm -rf "$(readlink -f "$WORK/pg")"
    rm -rf "$WORK/pg"
}

# The cluster lives in .work/pg, owned by `postgres` when running as root.
# When that user cannot reach the checkout (a home directory of mode 700) or
# the socket path would pass the 107-byte limit of Unix sockets, the cluster
# goes to a private directory under /tmp and .work/pg links to it.
make_pg_dir() {
    remove_pg_dir
    mkdir -p "$WORK"
    local dir=$WORK/pg
    if { is_root && ! runuser -u postgres -- test -x "$WORK"; } || [ ${#dir} -gt 80 ]; then
        dir=$(mktemp -d /tmp/recplay-doccano-pg.XXXXXX)
        ln -s "$dir" "$WORK/pg"
        log "the cluster goes to $dir (linked from $WORK/pg)"
    else
        mkdir -p "$dir"
    fi
    if is_root; then chown postgres:postgres "$dir"; fi
    PG_DIR=$dir
    PG_DATA=$PG_DIR/data
}

setup_cluster() {
    [ -x "$PG_BIN/initdb" ] || die "no $PG_BIN/initdb: install postgresql-15 (apt-get install postgresql-15) or set PG_BIN"
    if [ ! -f "$PG_DATA/PG_VERSION" ]; then
        log "initdb in $PG_DATA"
        make_pg_dir
        as_pg "$PG_BIN/initdb" -D "$PG_DATA" -U postgres --auth=trust --no-sync -E UTF8 --locale=C >/dev/null
        # The superuser only on the socket; the app user over TCP with SCRAM.
        printf 'local all all trust\nhost all all 127.0.0.1/32 scram-sha-256\n' |
            as_pg tee "$PG_DATA/pg_hba.conf" >/dev/null
        echo "PG_PORT=$(free_port)" >"$STATE"
        echo "APP_PORT=$(free_port)" >>"$STATE"
    fi
    cmd_pg_start
    if ! psql_admin -tAc "SELECT 1 FROM pg_roles WHERE rolname='$DB_USER'" | grep -q 1; then
        log "creating role and database $DB_NAME"
        psql_admin -c "SET password_encryption = 'scram-sha-256'" \
            -c "CREATE ROLE $DB_USER LOGIN PASSWORD '$DB_PASSWORD'"
        psql_admin -c "CREATE DATABASE $DB_NAME OWNER $DB_USER"
    fi
}

cmd_setup() {
    local t0=$SECONDS
    mkdir -p "$WORK/home/media"
    setup_venv
    setup_app_copy
    [ -f "$STATE" ] || remove_pg_dir
    setup_cluster
    load_state
    log "migrations"
    manage migrate --noinput >"$WORK/migrate.log" 2>&1 || die "migrate failed; see $WORK/migrate.log"
    manage create_roles >>"$WORK/migrate.log" 2>&1 || die "create_roles failed; see $WORK/migrate.log"
    if [ "$(psql_admin -d "$DB_NAME" -tAc "SELECT count(*) FROM auth_user WHERE username='$ADMIN_USER'")" = 0 ]; then
        log "creating the admin user $ADMIN_USER"
        manage create_admin --noinput --username "$ADMIN_USER" --password "$ADMIN_PASSWORD" \
            --email "$ADMIN_EMAIL" >>"$WORK/migrate.log" 2>&1 || die "create_admin failed; see $WORK/migrate.log"
    fi
    log "setup done in $((SECONDS - t0))s: PostgreSQL on 127.0.0.1:$PG_PORT, doccano will use port $APP_PORT"
}

cmd_serve() {
    load_state
    cmd_pg_start
    exec sh -c "$(gunicorn_command 127.0.0.1 "$PG_PORT" "${1:-$APP_PORT}" "$RECORD_WORKERS")"
}

install_fixed_token() {
    psql_admin -d "$DB_NAME" -c "
        DELETE FROM authtoken_token WHERE key = '$FIXED_TOKEN'
            AND user_id <> (SELECT id FROM auth_user WHERE username = '$ADMIN_USER');
        INSERT INTO authtoken_token (key, created, user_id)
            SELECT '$FIXED_TOKEN', now(), id FROM auth_user WHERE username = '$ADMIN_USER'
        ON CONFLICT (user_id) DO UPDATE SET key = EXCLUDED.key;" >/dev/null
}

# Logs in as the admin (the app and its database answer) and installs the
# fixed token. Against DOCCANO_URL (default: doccano's own port).
cmd_bootstrap_login() {
    local timeout=${1:-120} base=${DOCCANO_URL:-http://127.0.0.1:$APP_PORT}
    log "bootstrap against $base (timeout ${timeout}s)"
    "$VENV/bin/python" "$SAMPLE_DIR/traffic.py" login --base "$base" --timeout "$timeout" \
        --user "$ADMIN_USER" --password-env DOCCANO_ADMIN_PASSWORD_VALUE \
        </dev/null || die "could not log in as $ADMIN_USER at $base"
    install_fixed_token
}

# bootstrap [timeout] — log in, install the fixed token, and wait until
# GET /v1/me with it answers 200: the readiness signal traffic waits for.
cmd_bootstrap() {
    load_state
    local timeout=${1:-120} base=${DOCCANO_URL:-http://127.0.0.1:$APP_PORT}
    cmd_bootstrap_login "$timeout"
    "$VENV/bin/python" "$SAMPLE_DIR/traffic.py" wait-me --base "$base" --timeout "$timeout" \
        --token "$FIXED_TOKEN" || die "GET /v1/me with the fixed token never answered 200 at $base"
    log "doccano is ready at $base"
}

cmd_record_traffic() {
    load_state
    local base=${1:-${DOCCANO_URL:-http://127.0.0.1:$APP_PORT}}
    "$VENV/bin/python" "$SAMPLE_DIR/traffic.py" drive --base "$base" --token "$FIXED_TOKEN"
}

cmd_list_routes() {
    load_state
    # shellcheck disable=SC2046
    (cd "$BACKEND_DIR" && env $(doccano_env 127.0.0.1 "$PG_PORT") "$VENV/bin/python" \
        "$SAMPLE_DIR/routes.py" --keploy "$KEPLOY_DIR" "$@")
}


# The recplay binary: RECPLAY_BIN, or a debug build of this repository.
recplay_bin() {
    if [ -n "${RECPLAY_BIN:-}" ]; then
        [ -x "$RECPLAY_BIN" ] || die "RECPLAY_BIN=$RECPLAY_BIN is not an executable"
        echo "$RECPLAY_BIN"
        return 0
    fi
    log "building recplay (cargo build) in $REPO_ROOT"
    (cd "$REPO_ROOT" && cargo build --quiet --bin recplay) >&2 || die "cargo build of recplay failed"
    local target=${CARGO_TARGET_DIR:-$REPO_ROOT/target}
    echo "$target/debug/recplay"
}

# SO_REUSEADDR as servers set it: connections of a previous run in
# TIME_WAIT do not block the port, a listening socket does.
port_free() { # port
    "$PYTHON" -c 'import socket,sys; s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("127.0.0.1", int(sys.argv[1])))' "$1" 2>/dev/null
}

# Waits until 127.0.0.1:port accepts, failing early when the recplay
# process (which starts the app) has exited.
wait_for_app() { # pid port timeout logfile
    local deadline=$((SECONDS + $3))
    while [ $SECONDS -lt $deadline ]; do
        if ! kill -0 "$1" 2>/dev/null; then
            local rc=0
            wait "$1" || rc=$?
            tail -20 "$4" >&2
            die "recplay exited with $rc before doccano came up (log: $4)"
        fi
        if "$PYTHON" -c 'import socket,sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1).close()' "$2" 2>/dev/null; then
            return 0
        fi
        sleep 0.5
    done
    kill -INT "$1" 2>/dev/null || true
    die "doccano did not listen on 127.0.0.1:$2 within $3s (log: $4)"
}

test_sets() { # the test-set-* directory names under KEPLOY_DIR, one a line
    [ -d "$KEPLOY_DIR" ] || return 0
    find "$KEPLOY_DIR" -mindepth 1 -maxdepth 1 -type d -name 'test-set-*' -printf '%f\n' | sort -V
}

# record — recplay record around doccano (its DATABASE_URL on recplay's PG
# proxy); bootstrap waits for readiness, record-traffic runs through the
# HTTP proxy, then SIGINT stops recplay, which must exit 0 having written
# tests and mocks.
cmd_record() {
    local t0=$SECONDS bin http_port pg_proxy_port before rec_pid rc=0
    load_state
    bin=$(recplay_bin)
    cmd_pg_start
    mkdir -p "$KEPLOY_DIR"
    before=$(test_sets)
    port_free "$APP_PORT" || die "127.0.0.1:$APP_PORT (doccano's port) is taken: is '$0 serve' still running?"
    http_port=$(free_port)
    pg_proxy_port=$(free_port)
    log "recplay record: HTTP proxy 127.0.0.1:$http_port -> doccano 127.0.0.1:$APP_PORT," \
        "PG proxy 127.0.0.1:$pg_proxy_port -> 127.0.0.1:$PG_PORT; log in $WORK/record.log"
    "$bin" record --path "$KEPLOY_DIR" \
        --http-listen "127.0.0.1:$http_port" --http-upstream "http://127.0.0.1:$APP_PORT" \
        --pg-listen "127.0.0.1:$pg_proxy_port" --pg-upstream "127.0.0.1:$PG_PORT" \
        -c "$(gunicorn_command 127.0.0.1 "$pg_proxy_port" "$APP_PORT" "$RECORD_WORKERS")" \
        >"$WORK/record.log" 2>&1 &
    rec_pid=$!
    wait_for_app "$rec_pid" "$APP_PORT" 180 "$WORK/record.log"
    # Logging in goes to doccano directly (the admin password must not be
    # recorded); the readiness wait on GET /v1/me goes through the proxy.
    if ! (DOCCANO_URL="http://127.0.0.1:$APP_PORT" cmd_bootstrap_login 180 &&
        "$VENV/bin/python" "$SAMPLE_DIR/traffic.py" wait-me --base "http://127.0.0.1:$http_port" \
            --timeout 60 --token "$FIXED_TOKEN" &&
        cmd_record_traffic "http://127.0.0.1:$http_port"); then
        rc=1
    fi
    kill -INT "$rec_pid" 2>/dev/null || true
    # recplay gives in-flight exchanges --grace (10 s) and stops the app;
    # past a minute something is stuck.
    local deadline=$((SECONDS + 60))
    while kill -0 "$rec_pid" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.5; done
    if kill -0 "$rec_pid" 2>/dev/null; then
        kill -TERM "$rec_pid" 2>/dev/null || true
        die "recplay record did not exit within 60s of SIGINT (log: $WORK/record.log)"
    fi
    local rec_rc=0
    wait "$rec_pid" || rec_rc=$?
    [ "$rc" = 0 ] || { tail -20 "$WORK/record.log" >&2; die "record-traffic failed while recording (recplay log: $WORK/record.log)"; }
    [ "$rec_rc" = 0 ] || { tail -20 "$WORK/record.log" >&2; die "recplay record exited with $rec_rc after SIGINT (log: $WORK/record.log)"; }
    local set
    set=$(test_sets | grep -vxF -f <(printf '%s\n' "$before") | tail -1 || true)
    [ -n "$set" ] || die "recplay record wrote no new test set under $KEPLOY_DIR"
    local tests mocks
    tests=$(find "$KEPLOY_DIR/$set/tests" -name '*.yaml' 2>/dev/null | wc -l)
    [ "$tests" -gt 0 ] || die "$KEPLOY_DIR/$set has no recorded tests"
    [ -s "$KEPLOY_DIR/$set/mocks.yaml" ] || die "$KEPLOY_DIR/$set has no mocks.yaml"
    mocks=$(grep -c '^kind:' "$KEPLOY_DIR/$set/mocks.yaml" || true)
    echo "$set" >"$WORK/last-test-set"
    log "recorded $set: $tests tests, $mocks PostgreSQL mocks in $((SECONDS - t0))s"
}

# fill-secrets DIR — writes the values of the placeholders recording left
# (the token, the annotator's password) over them in every YAML file under
# DIR: for a recplay release that predates redaction and cannot fill them.
cmd_fill_secrets() {
    local dir=${1:-}
    [ -d "$dir" ] || die "fill-secrets: '$dir' is not a directory"
    find "$dir" -name '*.yaml' -exec sed -i \
        -e "s|{{recplay\.secret\.authorization_1}}|$FIXED_TOKEN|g" \
        -e "s|{{recplay\.secret\.password1_1}}|$ANNOTATOR_PASSWORD|g" {} +
}

render_config() { # writes the keploy.yml replay uses and prints its path
    local out=$WORK/keploy.yml
    cp "$SAMPLE_DIR/keploy.yml.template" "$out"
    # The values of the placeholders recording left for the token and the
    # annotator's password; outside the keploy directory, never committed.
    (umask 077 && printf 'authorization_1: "%s"\npassword1_1: "%s"\n' \
        "$FIXED_TOKEN" "$ANNOTATOR_PASSWORD" >"$WORK/secrets.yaml")
    printf 'record:\n  redact:\n    secretsFile: secrets.yaml\n' >>"$out"
    echo "$out"
}

# replay [--collapse] [--no-coverage] [--test-sets a,b] — recplay test with
# the database served from mocks.yaml (the real cluster is stopped first).
cmd_replay() {
    local t0=$SECONDS bin mock_port app_port config rc=0
    local extra=() coverage=(--coverage) mode=default
    while [ $# -gt 0 ]; do
        case "$1" in
        --collapse) extra+=(--pg-matcher collapse-literals); mode=collapse ;;
        --no-coverage) coverage=() ;;
        --test-sets) extra+=(--test-sets "$2"); shift ;;
        --shard) extra+=(--shard "$2"); mode="shard $2"; shift ;;
        *) die "replay: unknown option '$1' (known: --collapse, --no-coverage, --test-sets LIST, --shard I/N)" ;;
        esac
        shift
    done
    load_state
    bin=$(recplay_bin)
    [ -n "$(test_sets)" ] || die "no test sets under $KEPLOY_DIR: run '$0 record' first"
    cmd_pg_stop
    config=$(render_config)
    local runs_before
    runs_before=$(find "$KEPLOY_DIR/reports" -maxdepth 1 -name 'test-run-*' -printf '%f\n' 2>/dev/null |
        sed 's/^test-run-//' | grep -E '^[0-9]+$' | sort -n | tail -1 || true)
    mock_port=$(free_port)
    # doccano builds absolute URLs (pagination links, media URLs) from the
    # Host it is asked as, which is its own address at record time: replay
    # it on the same port so they compare equal.
    app_port=$APP_PORT
    port_free "$app_port" || die "127.0.0.1:$app_port (doccano's port) is taken: is '$0 serve' still running?"
    log "recplay test ($mode matcher): PG mock on 127.0.0.1:$mock_port, doccano on 127.0.0.1:$app_port;" \
        "log in $WORK/replay.log"
    # Readiness is gunicorn's port, which its master opens before the
    # workers have loaded Django (10-15 s on a busy 2-core machine): the
    # first request waits for them, hence the generous --api-timeout.
    "$bin" test --path "$KEPLOY_DIR" --config "$config" \
        --http-target "http://127.0.0.1:$app_port" --delay 120 --api-timeout 120 \
        -c "$(gunicorn_command 127.0.0.1 "$mock_port" "$app_port" "$REPLAY_WORKERS")" \
        --pg-listen "127.0.0.1:$mock_port" "${coverage[@]}" "${extra[@]}" \
        >"$WORK/replay.log" 2>&1 || rc=$?
    log "recplay test exited with $rc after $((SECONDS - t0))s"
    if [ "${mode%% *}" = shard ]; then
        # One shard holds only part of the polymorphic answers: the merged
        # run is checked as a whole (cmd_sharded).
        [ "$rc" -eq 0 ] || { tail -30 "$WORK/replay.log" >&2; die "replay ($mode) failed (log: $WORK/replay.log)"; }
        return 0
    fi
    local check=(--expect-pass)
    [ "$mode" = collapse ] && check=(--expect-polymorphic-failure)
    check+=(--newer-than "${runs_before:--1}")
    "$VENV/bin/python" "$SAMPLE_DIR/check_report.py" --keploy "$KEPLOY_DIR" "${check[@]}" --exit-code "$rc" ||
        { tail -30 "$WORK/replay.log" >&2; die "replay ($mode matcher) did not give the expected result (log: $WORK/replay.log)"; }
}

# coverage — per-test and total line coverage of doccano's backend from the
# latest run, and its Cobertura/LCOV exports.
cmd_coverage() {
    local bin out=$WORK/coverage
    load_state
    bin=$(recplay_bin)
    mkdir -p "$out"
    "$bin" coverage export --path "$KEPLOY_DIR" --format lcov -o "$out/lcov.info" ||
        die "recplay coverage export --format lcov failed (did replay run with --coverage?)"
    "$bin" coverage export --path "$KEPLOY_DIR" --format cobertura -o "$out/cobertura.xml" ||
        die "recplay coverage export --format cobertura failed"
    "$VENV/bin/python" "$SAMPLE_DIR/coverage_summary.py" --lcov "$out/lcov.info" --source "$BACKEND_DIR" ||
        die "no coverage of doccano's backend in $out/lcov.info"
    log "wrote $out/lcov.info and $out/cobertura.xml"
    cmd_list_routes --quiet
}

# sharded [N] — the replay as N CI runners would run it (one after another
# here), merged with recplay report merge: the merged run must pass as the
# unsharded one does, with the same tests, verdicts and covered lines.
cmd_sharded() {
    local total=${1:-4} bin whole merged_before runs=() i
    load_state
    bin=$(recplay_bin)
    whole=$(latest_run_dir) || die "sharded: replay once unsharded first ('$0 replay')"
    for i in $(seq 1 "$total"); do
        cmd_replay --shard "$i/$total"
        runs+=("$(latest_run_dir)")
    done
    merged_before=$(basename "${runs[-1]}" | sed 's/^test-run-//')
    "$bin" report merge --path "$KEPLOY_DIR" "${runs[@]}" >"$WORK/merge.log" 2>&1 ||
        { cat "$WORK/merge.log" >&2; die "recplay report merge failed (log: $WORK/merge.log)"; }
    "$VENV/bin/python" "$SAMPLE_DIR/check_report.py" --keploy "$KEPLOY_DIR" --expect-pass \
        --exit-code 0 --newer-than "$merged_before" ||
        die "the merged run of $total shards did not pass as a whole"
    "$VENV/bin/python" "$SAMPLE_DIR/compare_runs.py" "$whole" "$(latest_run_dir)" ||
        die "the merged run of $total shards differs from the unsharded run $whole"
    log "$total shards merged into $(latest_run_dir): same tests, verdicts and covered lines as $whole"
}

# The newest reports/test-run-N directory.
latest_run_dir() {
    local n
    n=$(find "$KEPLOY_DIR/reports" -maxdepth 1 -name 'test-run-*' -printf '%f\n' 2>/dev/null |
        sed 's/^test-run-//' | grep -E '^[0-9]+$' | sort -n | tail -1) || return 1
    [ -n "$n" ] || return 1
    echo "$KEPLOY_DIR/reports/test-run-$n"
}

cmd_all() {
    local t0=$SECONDS
    cmd_setup
    cmd_record
    cmd_replay
    cmd_coverage
    log "all done in $((SECONDS - t0))s"
}

export DOCCANO_ADMIN_PASSWORD_VALUE=$ADMIN_PASSWORD
export DOCCANO_ANNOTATOR_PASSWORD=$ANNOTATOR_PASSWORD
export PGPASSWORD=$DB_PASSWORD

main() {
    local sub=${1:-}
    [ $# -gt 0 ] && shift
    case "$sub" in
    setup) cmd_setup "$@" ;;
    serve) cmd_serve "$@" ;;
    bootstrap) cmd_bootstrap "$@" ;;
    record-traffic) cmd_record_traffic "$@" ;;
    list-routes) cmd_list_routes "$@" ;;
    record) cmd_record "$@" ;;
    replay) cmd_replay "$@" ;;
    sharded) cmd_sharded "$@" ;;
    coverage) cmd_coverage "$@" ;;
    all) cmd_all "$@" ;;
    pg-start) cmd_pg_start ;;
    pg-stop) cmd_pg_stop ;;
    fill-secrets) cmd_fill_secrets "$@" ;;
    *) sed -n '2,/^set -euo/p' "$0" | grep '^#' | sed 's/^# \{0,1\}//'; [ -z "$sub" ] || die "unknown subcommand '$sub'" ;;
    esac
}

main "$@"
