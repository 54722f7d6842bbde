#!/usr/bin/env bash
# Fuzzes the live API with schemathesis (PyPI, pinned, in a venv under /var/tmp)
# against the server's own OpenAPI document, on SQLite and on PostgreSQL, as a
# staff user (admin) and as a patron. The bar: no 5xx and no response that
# breaks the document (status codes, content types, response schemas).
#
#   scripts/fuzz-api.sh [sqlite|postgres|all]      (default: all)
#
# For each backend it starts the debug `carrel` binary (CARREL_ENV=test, a temp
# data dir; PostgreSQL: a fresh database, dropped afterwards), creates the
# users with `carrel users create --password-stdin`, logs them in, seeds items,
# copies, loans, fines and holds, and hands their ids to schemathesis as
# dictionaries so path ids hit real rows about half of the time.
#
# Rate limits stay on, at generous values (CARREL_RATE_LIMIT_*). Argon2 runs
# with cheap settings and lockout is out of reach, so fuzzed wrong passwords
# do not lock the fuzz users out.
#
# Operations that end the fuzzer's own login run in their own short pass at
# the end (POST /auth/logout, /auth/logout-all) and so does the test clock
# (jumping years ahead would expire the tokens mid-run); scripts/lib/fuzz_hooks.py
# skips cases that would delete or demote the fuzz user itself or revoke its
# own session (schemathesis learns those ids from responses).
#
# Env: CARREL_FUZZ_POSTGRES_URL (server URL without a database, default
# postgres://postgres@127.0.0.1:5432), CARREL_FUZZ_MAX_EXAMPLES (default 8),
# CARREL_FUZZ_MAX_TIME (seconds of each main pass, default 35),
# CARREL_FUZZ_SHORT_TIME (the clock and logout passes, default 5),
# CARREL_FUZZ_SEED, CARREL_FUZZ_VENV, CARGO_TARGET_DIR, CARREL_BIN (a carrel
# binary to use instead of building one), CARREL_FUZZ_KEEP=1 (keep the logs,
# reports and data dirs).
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"
# shellcheck source=lib/python-venv.sh
source scripts/lib/python-venv.sh

backends="${1:-all}"
case "$backends" in
    all) backends="sqlite postgres" ;;
    sqlite | postgres) ;;
    *) echo "usage: $0 [sqlite|postgres|all]" >&2; exit 2 ;;
esac
pg_server="${CARREL_FUZZ_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432}"
max_examples="${CARREL_FUZZ_MAX_EXAMPLES:-8}"
max_time="${CARREL_FUZZ_MAX_TIME:-35}"
short_time="${CARREL_FUZZ_SHORT_TIME:-5}"
fuzz_seed="${CARREL_FUZZ_SEED:-$RANDOM}"
venv="${CARREL_FUZZ_VENV:-/var/tmp/carrel-fuzz-venv}"

ensure_venv "$venv" "schemathesis==4.32.5"
carrel="$(carrel_debug_binary)"
py="$venv/bin/python"
helper="$repo_root/scripts/lib/fuzz_api.py"

work="$(mktemp -d /var/tmp/carrel-fuzz.XXXXXX)"
server_pid=""
pg_db=""
cleanup() {
    if [[ -n "$server_pid" ]]; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    if [[ -n "$pg_db" ]]; then
        psql -w -q "$pg_server/postgres" -c "DROP DATABASE IF EXISTS \"$pg_db\" WITH (FORCE)" >/dev/null 2>&1 || true
    fi
    if [[ -n "${CARREL_FUZZ_KEEP:-}" ]]; then
        echo "kept $work"
    else
        rm -rf "$work"
    fi
}
trap cleanup EXIT

free_port() {
    "$py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# The server's environment for one backend (the caller sets the database).
server_env() {
    export CARREL_ENV=test
    export CARREL_LOG_FORMAT=json
    export CARREL_ARGON2_MEMORY_KIB=256 CARREL_ARGON2_ITERATIONS=1 CARREL_ARGON2_PARALLELISM=1
    export CARREL_LOCKOUT_THRESHOLD=1000
    export CARREL_JOBS_INTERVAL=1h
    # On, but far above what the fuzzer sends in a run.
    local name
    for name in LOGIN REGISTER PASSWORD_FORGOT MFA_VERIFY REFRESH PROFILE_UPDATE \
        COVER_UPLOAD PAYMENTS ACCOUNT_DELETION GLOBAL; do
        export "CARREL_RATE_LIMIT_$name=100000/min"
    done
}

# schemathesis against the running server. $1: label, $2: who (staff or
# patron: its token, config and own ids), $3: time budget in seconds, then
# operation filters.
run_schemathesis() {
    local label="$1" who="$2" budget="$3"
    shift 3
    local before="$run_dir/$label.before.json" after="$run_dir/$label.after.json"
    "$py" "$helper" metrics "$base" "$before"
    local status=0
    # --max-time bounds the run (fuzzing repeats until it is spent); `timeout`
    # is the backstop should schemathesis hang.
    # From the run's own directory, so nothing lands in the checkout.
    (cd "$run_dir" && CARREL_FUZZ_OWN_IDS="$(cat "$run_dir/$who.own")" SCHEMATHESIS_HOOKS=fuzz_hooks \
        PYTHONPATH="$repo_root/scripts/lib" \
        timeout --kill-after=10 $((budget + 60)) \
        "$venv/bin/schemathesis" --config-file "$run_dir/$who.toml" run "$base/api/v1/openapi.json" \
        --checks not_a_server_error,response_schema_conformance,status_code_conformance,content_type_conformance \
        --header "Authorization: Bearer $(cat "$run_dir/$who.token")" \
        --max-examples "$max_examples" --max-time "$budget" --seed "$fuzz_seed" \
        --workers 1 --request-timeout 20 --generation-database none \
        --suppress-health-check all --no-color --warnings off \
        --report junit --report-dir "$run_dir/report-$label" \
        "$@" >"$run_dir/$label.log" 2>&1) || status=$?
    "$py" "$helper" metrics "$base" "$after"
    "$py" "$helper" summary "$doc" "$before" "$after" "$backend/$label" | tee -a "$work/summary.txt"
    if [[ "$status" != 0 ]]; then
        echo "FAIL schemathesis ($backend, $label) exited $status; its report:"
        # From the failures (or errors) section on; the progress lines before carry nothing.
        awk '/^=+ (FAILURES|ERRORS) =+$/ {p = 1} p' "$run_dir/$label.log" | cut -c1-400 | head -n 300
        failed=1
    fi
}

failed=0
for backend in $backends; do
    echo "==> fuzzing on $backend (seed $fuzz_seed, max examples $max_examples)"
    run_dir="$work/$backend"
    mkdir -p "$run_dir/data"
    if [[ "$backend" == postgres ]]; then
        pg_db="carrel_fuzz_$$_$(date +%s)"
        psql -w -q "$pg_server/postgres" -c "CREATE DATABASE \"$pg_db\"" >/dev/null
        database_url="$pg_server/$pg_db"
    else
        database_url="sqlite://$run_dir/data/carrel.db"
    fi
    port="$(free_port)"
    base="http://127.0.0.1:$port"
    (
        server_env
        export CARREL_DATA_DIR="$run_dir/data" CARREL_DATABASE_URL="$database_url" CARREL_BIND="127.0.0.1:$port"
        "$carrel" migrate >/dev/null
        for user in "fuzzstaff admin" "fuzzpatron patron" "fuzzother patron"; do
            set -- $user
            echo "Fuzz-Carrel-Passw0rd!" |
                "$carrel" users create --email "$1@example.org" --username "$1" --role "$2" --password-stdin >/dev/null
        done
        exec "$carrel" serve >"$run_dir/server.log" 2>&1
    ) &
    server_pid=$!
    for _ in $(seq 1 100); do
        curl -fsS "$base/readiness" >/dev/null 2>&1 && break
        if ! kill -0 "$server_pid" 2>/dev/null; then
            echo "FAIL the server did not start:"; tail -n 20 "$run_dir/server.log"; exit 1
        fi
        sleep 0.2
    done
    curl -fsS "$base/readiness" >/dev/null
    doc="$run_dir/openapi.json"
    curl -fsS "$base/api/v1/openapi.json" >"$doc"
    "$py" "$helper" seed "$base" "$run_dir"

    # The patron first: the staff pass may delete or deactivate the patron.
    # Logout, then the test clock (which expires every token), get short passes of their own.
    run_schemathesis patron patron "$max_time" --exclude-path /api/v1/auth/logout \
        --exclude-path /api/v1/auth/logout-all --exclude-path /api/v1/test/clock
    run_schemathesis staff staff "$max_time" --exclude-path /api/v1/auth/logout \
        --exclude-path /api/v1/auth/logout-all --exclude-path /api/v1/test/clock
    run_schemathesis logout patron "$short_time" --include-path /api/v1/auth/logout \
        --include-path /api/v1/auth/logout-all
    run_schemathesis clock staff "$short_time" --include-path /api/v1/test/clock

    if grep -q '"level":"ERROR"' "$run_dir/server.log"; then
        echo "server errors logged on $backend:"
        grep '"level":"ERROR"' "$run_dir/server.log" | head -n 20
    fi
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
    if [[ -n "$pg_db" ]]; then
        psql -w -q "$pg_server/postgres" -c "DROP DATABASE IF EXISTS \"$pg_db\" WITH (FORCE)" >/dev/null
        pg_db=""
    fi
done

echo
echo "==> fuzz summary (seed $fuzz_seed)"
grep '^FUZZ' "$work/summary.txt" | "$py" -c '
import sys
ops = req = err = 0
for line in sys.stdin:
    fields = dict(f.split("=") for f in line.split()[2:])
    req += int(fields["requests"]); err += int(fields["server_errors"])
    print(line.strip())
print(f"total: {req} requests, {err} 5xx")
'
if [[ "$failed" != 0 ]]; then
    echo "FAIL the fuzzer found problems (see above); reproduce with CARREL_FUZZ_SEED=$fuzz_seed"
    exit 1
fi
echo "ok   no 5xx and no response breaking the OpenAPI document"
