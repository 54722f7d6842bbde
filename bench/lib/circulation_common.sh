# bench/lib/circulation_common.sh: the set-up shared by bench/circulation.sh and
# bench/sip2.sh (sourced, not run). Callers set SCRIPT (their name, for messages)
# and call, in order:
#   circ_init BACKEND        check binaries, unset CARREL_*, make the temp dir, the
#                            cleanup trap, and the scratch database (postgres)
#   circ_seed                `circulation_load seed` (+ VACUUM on postgres) and the
#                            librarian `counter` (BENCH_PIN, if set, is passed on)
#   circ_start_server        `carrel serve` with whatever CARREL_* the caller exported,
#                            waits for /health
#   circ_login               sets TOKEN (the librarian's access token)
#   circ_http_load FILE      the HTTP checkout + return load, its lines to FILE and
#                            indented to stdout, then carrel/postgres CPU and load average
# and may use LOAD_BIN, BIN, WORK, BASE, PG_DB, SERVER_PID, cpu_report and the
# functions of bench/lib.sh (sourced here).
# shellcheck shell=bash

# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

circ_init() {
    BACKEND=$1
    BIN=${BENCH_BIN:-target/release/carrel}
    PORT=${BENCH_PORT:-18080}
    export PGHOST=${PGHOST:-127.0.0.1} PGPORT=${PGPORT:-5432} PGUSER=${PGUSER:-postgres}
    BASE="http://127.0.0.1:${PORT}"
    PASSWORD='Bench-Desk-Lantern-2026'
    check_backend "$BACKEND"
    [[ -f "$BIN" && -x "$BIN" ]] || die "no executable binary at '$BIN' (set BENCH_BIN)"
    BIN=$(realpath "$BIN")
    if [[ -n "${BENCH_LOAD_BIN:-}" ]]; then
        LOAD_BIN=$BENCH_LOAD_BIN
    else
        LOAD_BIN=$(newest_bench_bin "$BIN" circulation_load)
    fi
    [[ -n "$LOAD_BIN" && -x "$LOAD_BIN" ]] \
        || die "no circulation_load bench binary next to $BIN (build it with cargo bench -p carrel-server --bench circulation_load --no-run, or set BENCH_LOAD_BIN)"
    LOAD_BIN=$(realpath "$LOAD_BIN")
    command -v curl >/dev/null || die "curl is required"
    command -v python3 >/dev/null || die "python3 is required"
    clear_carrel_env

    WORK=$(mktemp -d -t carrel-circ.XXXXXX)
    SERVER_PID=""
    PG_DB=""
    trap circ_cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM

    check_port_free "$BASE"

    export CARREL_DATA_DIR="$WORK/data" CARREL_ENV=development CARREL_LOG_FORMAT=json RUST_LOG=warn \
        CARREL_RATE_LIMITS_ENABLED=false CARREL_BIND="127.0.0.1:${PORT}"
    if [[ "$BACKEND" == postgres ]]; then
        PG_DB="carrel_bench_circ_$$"
        psql -d postgres -qtAc "CREATE DATABASE \"$PG_DB\"" >/dev/null || die "cannot create database $PG_DB"
        export CARREL_DATABASE_URL="postgres://${PGUSER}@${PGHOST}:${PGPORT}/${PG_DB}"
    else
        mkdir -p "$CARREL_DATA_DIR"
        export CARREL_DATABASE_URL="sqlite://$CARREL_DATA_DIR/carrel.db"
    fi
    cd "$WORK"
}

circ_cleanup() {
    local status=$?
    trap - EXIT INT TERM
    stop_server
    if [[ -n "$PG_DB" ]]; then
        psql -d postgres -qtAc "DROP DATABASE IF EXISTS \"$PG_DB\" WITH (FORCE)" >/dev/null 2>&1 \
            || echo "${SCRIPT:-bench}: could not drop database $PG_DB" >&2
    fi
    rm -rf "$WORK"
    exit "$status"
}

circ_seed() {
    printf '%-22s %s\n' "backend:" "$BACKEND" "binary:" "$BIN" "load generator:" "$LOAD_BIN"
    "$LOAD_BIN" seed "$WORK/patrons.txt" | sed 's/^/  /'
    if [[ "$BACKEND" == postgres ]]; then
        psql -d "$PG_DB" -qtAc 'VACUUM (ANALYZE)' >/dev/null
    fi
    printf '%s' "$PASSWORD" | "$BIN" users create --email counter@bench.example --username counter \
        --role librarian --password-stdin >/dev/null
}

circ_start_server() {
    "$BIN" serve >"$WORK/server.log" 2>&1 &
    SERVER_PID=$!
    for _ in $(seq 600); do
        curl -sf -o /dev/null "$BASE/health" && break
        kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/server.log" >&2; die "the server exited"; }
        sleep 0.1
    done
}

circ_login() {
    TOKEN=$(curl -sf -H 'content-type: application/json' \
        -d "{\"username\":\"counter\",\"password\":\"$PASSWORD\"}" "$BASE/api/v1/auth/login" \
        | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])') \
        || die "the librarian could not log in"
}


# Runs "$@" (a load command), its output to FILE and indented to stdout, then the
# CPU carrel (and PostgreSQL) used meanwhile and the load average.
cpu_report() {
    local file=$1; shift
    local clk_tck server_before pg_before server_after pg_after seconds
    clk_tck=$(getconf CLK_TCK)
    server_before=$(proc_ticks "$SERVER_PID"); pg_before=$(pg_ticks)
    "$@" | tee "$file" | sed 's/^/  /'
    server_after=$(proc_ticks "$SERVER_PID"); pg_after=$(pg_ticks)
    seconds=$(( ${BENCH_WARMUP:-2} + ${BENCH_DURATION:-10} ))
    awk -v s=$((server_after - server_before)) -v p=$((pg_after - pg_before)) -v t="$clk_tck" -v d="$seconds" \
        'BEGIN { printf "  carrel CPU:          %.0f %% of one core\n", 100 * s / t / d;
                 if (p > 0) printf "  postgres CPU:        %.0f %% of one core\n", 100 * p / t / d }'
    echo "  load average:        $(cut -d' ' -f1-3 /proc/loadavg)"
}

circ_http_load() {
    circ_analyze_during_warmup
    cpu_report "$1" "$LOAD_BIN" load "$BASE" "$TOKEN" "$WORK/patrons.txt"
}

# PostgreSQL: the seed leaves loans, holds and fines empty, and with those
# statistics the planner scans them in full, which costs more with every loan
# the run adds. One second into the warm-up, ANALYZE gives the tables the
# statistics a library in service has (PostgreSQL then re-plans), so the
# measured seconds use the plans production would.
circ_analyze_during_warmup() {
    [[ "$BACKEND" == postgres ]] || return 0
    (sleep 1; psql -d "$PG_DB" -qtAc 'ANALYZE loans, holds, fines, item_events, audit_events' >/dev/null 2>&1) &
}

# The value of the `label: value` line LABEL in FILE.
value_of() { awk -F': ' -v l="$1" '$1 == l { print $2 }' "$2"; }
