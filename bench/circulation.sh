#!/usr/bin/env bash
# bench/circulation.sh: checkout + return cycles per second, with 10,000 patrons
# and 100,000 copies, at concurrency 8, for one backend.
#
# Usage:
#   bench/circulation.sh [BACKEND]        BACKEND: sqlite (default) or postgres
#
# The release `carrel` binary is $BENCH_BIN (default target/release/carrel); the
# seeder and load generator is the circulation_load bench target
# (crates/carrel-server/benches/circulation_load.rs), looked up as the newest
# <dir of BENCH_BIN>/deps/circulation_load-* unless BENCH_LOAD_BIN names it. Build:
#   CARGO_TARGET_DIR=<dir> cargo build --release -p carrel-server --bin carrel
#   CARGO_TARGET_DIR=<dir> cargo bench -p carrel-server --bench circulation_load --no-run
#
# What it does:
#   1. Fresh state: a temp data dir (sqlite: <data dir>/carrel.db) or a scratch
#      PostgreSQL database carrel_bench_circ_<pid> (dropped on exit).
#   2. `circulation_load seed`: migrations, 10,000 verified patrons and 100,000
#      available copies (20,000 items x 5; BENCH_PATRONS / BENCH_COPIES) through the
#      store; postgres: VACUUM (ANALYZE) afterwards. A librarian is created with
#      `carrel users create`.
#   3. Starts the server (CARREL_ENV=development, rate limits off: all load comes from
#      one address; everything else default), logs the librarian in with curl.
#   4. `circulation_load load`: 8 workers (BENCH_CONCURRENCY), each looping
#      POST /api/v1/loans (its next copy, a random patron) then POST /api/v1/loans/return,
#      2 s warm-up (BENCH_WARMUP) discarded, 10 s (BENCH_DURATION) measured. Prints
#      cycles/s, cycle/checkout/return latency p50/p99 and errors, the CPU used by carrel
#      and (postgres) its PostgreSQL backends, then the target: >= 500 cycles/s on
#      sqlite, >= 300 on postgres. Any error response fails the script (exit 1).
#
# Everything stays on 127.0.0.1 (port BENCH_PORT, default 18080); CARREL_* variables of
# the caller are ignored; the server is stopped, the database dropped and the temp dir
# removed on exit, including on error or Ctrl-C. PGHOST/PGPORT/PGUSER default to
# 127.0.0.1/5432/postgres. Run time: about 30-60 s.
set -euo pipefail
export LC_ALL=C

BACKEND=${1:-sqlite}
BIN=${BENCH_BIN:-target/release/carrel}
PORT=${BENCH_PORT:-18080}
export PGHOST=${PGHOST:-127.0.0.1} PGPORT=${PGPORT:-5432} PGUSER=${PGUSER:-postgres}
BASE="http://127.0.0.1:${PORT}"
PASSWORD='Bench-Desk-Lantern-2026'

die() { echo "circulation.sh: $*" >&2; exit 1; }

case "$BACKEND" in
    sqlite) TARGET=500 ;;
    postgres) TARGET=300 ;;
    *) die "backend must be sqlite or postgres, not '$BACKEND'" ;;
esac
[[ -f "$BIN" && -x "$BIN" ]] || die "no executable binary at '$BIN' (set BENCH_BIN)"
BIN=$(realpath "$BIN")
if [[ -n "${BENCH_LOAD_BIN:-}" ]]; then
    LOAD_BIN=$BENCH_LOAD_BIN
else
    LOAD_BIN=$(find "$(dirname "$BIN")/deps" -maxdepth 1 -type f -name 'circulation_load-*' ! -name '*.*' \
        -perm -u+x -printf '%T@ %p\n' 2>/dev/null | sort -rn | awk 'NR == 1 { print $2 }')
fi
[[ -n "$LOAD_BIN" && -x "$LOAD_BIN" ]] \
    || die "no circulation_load bench binary next to $BIN (build it with cargo bench -p carrel-server --bench circulation_load --no-run, or set BENCH_LOAD_BIN)"
LOAD_BIN=$(realpath "$LOAD_BIN")
command -v curl >/dev/null || die "curl is required"
command -v python3 >/dev/null || die "python3 is required"
while IFS= read -r var; do unset "$var"; done < <(compgen -e | grep '^CARREL_' || true)

WORK=$(mktemp -d -t carrel-circ.XXXXXX)
SERVER_PID=""
PG_DB=""
cleanup() {
    local status=$?
    trap - EXIT INT TERM
    if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    if [[ -n "$PG_DB" ]]; then
        psql -d postgres -qtAc "DROP DATABASE IF EXISTS \"$PG_DB\" WITH (FORCE)" >/dev/null 2>&1 \
            || echo "circulation.sh: could not drop database $PG_DB" >&2
    fi
    rm -rf "$WORK"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if curl -s -o /dev/null --max-time 1 "$BASE/"; then
    die "something already answers on 127.0.0.1:${PORT}; set BENCH_PORT"
fi

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

printf '%-22s %s\n' "backend:" "$BACKEND" "binary:" "$BIN" "load generator:" "$LOAD_BIN"
"$LOAD_BIN" seed "$WORK/patrons.txt" | sed 's/^/  /'
if [[ "$BACKEND" == postgres ]]; then
    psql -d "$PG_DB" -qtAc 'VACUUM (ANALYZE)' >/dev/null
fi
printf '%s' "$PASSWORD" | "$BIN" users create --email counter@bench.example --username counter \
    --role librarian --password-stdin >/dev/null

"$BIN" serve >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 600); do
    curl -sf -o /dev/null "$BASE/health" && break
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/server.log" >&2; die "the server exited"; }
    sleep 0.1
done
TOKEN=$(curl -sf -H 'content-type: application/json' \
    -d "{\"username\":\"counter\",\"password\":\"$PASSWORD\"}" "$BASE/api/v1/auth/login" \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])') \
    || die "the librarian could not log in"

CLK_TCK=$(getconf CLK_TCK)
proc_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
pg_ticks() {
    [[ -n "$PG_DB" ]] || { echo 0; return 0; }
    local pid sum=0
    for pid in $(psql -d postgres -qtAc "SELECT pid FROM pg_stat_activity WHERE datname = '$PG_DB' AND application_name = 'carrel'"); do
        sum=$((sum + $(awk '{ print $14 + $15 }' "/proc/$pid/stat" 2>/dev/null || echo 0)))
    done
    echo "$sum"
}
server_before=$(proc_ticks "$SERVER_PID"); pg_before=$(pg_ticks)
"$LOAD_BIN" load "$BASE" "$TOKEN" "$WORK/patrons.txt" | tee "$WORK/load.txt" | sed 's/^/  /'
server_after=$(proc_ticks "$SERVER_PID"); pg_after=$(pg_ticks)
seconds=$(( ${BENCH_WARMUP:-2} + ${BENCH_DURATION:-10} ))
awk -v s=$((server_after - server_before)) -v p=$((pg_after - pg_before)) -v t="$CLK_TCK" -v d="$seconds" \
    'BEGIN { printf "  carrel CPU:          %.0f %% of one core\n", 100 * s / t / d;
             if (p > 0) printf "  postgres CPU:        %.0f %% of one core\n", 100 * p / t / d }'
echo "  load average:        $(cut -d' ' -f1-3 /proc/loadavg)"

rate=$(awk -F': ' '$1 == "cycles/s" { print $2 }' "$WORK/load.txt")
errors=$(awk -F': ' '$1 == "errors" { print $2 }' "$WORK/load.txt")
if awk -v r="$rate" -v t="$TARGET" 'BEGIN { exit !(r >= t) }'; then
    echo "target >= $TARGET cycles/s: MET ($rate)"
else
    echo "target >= $TARGET cycles/s: MISSED ($rate)"
fi
[[ "$errors" == 0 ]] || die "$errors error responses during the run"
