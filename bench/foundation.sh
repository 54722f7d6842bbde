#!/usr/bin/env bash
# bench/foundation.sh: baseline numbers for the Carrel server foundation.
#
# Usage:
#   bench/foundation.sh [BINARY] [BACKEND]
#
#   BINARY   path to a release `carrel` binary (default: target/release/carrel)
#   BACKEND  sqlite (default) or postgres
#
# What it does and prints (one "label: value" line each):
#   binary size       size of BINARY in MB (10^6 bytes), plus the exact byte count
#   start-up runs     for each of $BENCH_STARTUP_RUNS (5) runs on a fresh data dir (and,
#                     for postgres, a fresh scratch database): ms from process launch
#                     until GET /health answers 200 (curl polled every ~5 ms, so the
#                     resolution is roughly 5-10 ms); migrations run inside this time
#   start-up median   the median of those runs, in ms
#   idle RSS          VmRSS of a freshly started server (1 s after /health is up), MiB
#   load              wrk against GET /health, concurrency 32 over 2 threads:
#                     2 s warm-up (discarded), then 10 s measured with --latency
#   requests/s        wrk's Requests/sec for the measured run
#   latency p50/p99   wrk's latency percentiles, converted to ms
#   errors            non-2xx responses and socket errors (only printed if any)
#   RSS after load    VmRSS right after the measured run, MiB
#
# Environment knobs (all optional):
#   BENCH_PORT (18080)  BENCH_STARTUP_RUNS (5)  BENCH_CONCURRENCY (32)
#   BENCH_THREADS (2)   BENCH_DURATION (10)     BENCH_WARMUP (2)
#   PGHOST (127.0.0.1)  PGPORT (5432)           PGUSER (postgres)
#
# The postgres backend creates scratch databases named carrel_bench_<pid>_<n> with
# createdb and drops them on exit. Any CARREL_* variables in the caller's environment
# are ignored, and the server runs from a temp directory (so no .env / carrel.toml is
# picked up). Everything stays on 127.0.0.1; the server is stopped and the temp dir
# removed on exit, including on error or Ctrl-C. wrk is installed with apt-get only if
# it is missing. Total run time is about 20-40 s.
set -euo pipefail
export LC_ALL=C

BIN=${1:-target/release/carrel}
BACKEND=${2:-sqlite}
PORT=${BENCH_PORT:-18080}
STARTUP_RUNS=${BENCH_STARTUP_RUNS:-5}
CONCURRENCY=${BENCH_CONCURRENCY:-32}
THREADS=${BENCH_THREADS:-2}
DURATION=${BENCH_DURATION:-10}
WARMUP=${BENCH_WARMUP:-2}
STARTUP_TIMEOUT_MS=30000
export PGHOST=${PGHOST:-127.0.0.1} PGPORT=${PGPORT:-5432} PGUSER=${PGUSER:-postgres}

URL="http://127.0.0.1:${PORT}/health"

SCRIPT=foundation.sh
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

check_backend "$BACKEND"
[[ -f "$BIN" && -x "$BIN" ]] || die "no executable binary at '$BIN' (build it with cargo build --release)"
BIN=$(realpath "$BIN")
command -v curl >/dev/null || die "curl is required"

clear_carrel_env

ensure_wrk

if [[ "$BACKEND" == postgres ]]; then
    command -v createdb >/dev/null && command -v dropdb >/dev/null \
        || die "createdb/dropdb (PostgreSQL client tools) are required for the postgres backend"
    psql -d postgres -qtAc 'select 1' >/dev/null 2>&1 \
        || die "cannot reach PostgreSQL as $PGUSER@$PGHOST:$PGPORT"
fi

WORK=$(mktemp -d -t carrel-bench.XXXXXX)
SERVER_PID=""
CHILD_PID=""
PG_DBS=()

cleanup() {
    local status=$?
    trap - EXIT INT TERM
    stop_child
    stop_server
    for db in "${PG_DBS[@]}"; do
        dropdb --if-exists "$db" 2>/dev/null || echo "foundation.sh: could not drop database $db" >&2
    done
    rm -rf "$WORK"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

mib() { awk '/^VmRSS:/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }

# Prepares fresh state for run $1: a data dir and the database URL (in DB_URL).
fresh_state() {
    DATA_DIR="$WORK/data-$1"
    mkdir -p "$DATA_DIR"
    if [[ "$BACKEND" == postgres ]]; then
        local db="carrel_bench_$$_$1"
        createdb "$db"
        PG_DBS+=("$db")
        DB_URL="postgres://${PGUSER}@${PGHOST}:${PGPORT}/${db}"
    else
        DB_URL="sqlite://${DATA_DIR}/carrel.db"
    fi
}

# Launches the server on the prepared state and waits for /health = 200.
# Sets SERVER_PID and STARTUP_MS.
start_server() {
    local log="$WORK/server-$1.log" t0 t1 code
    t0=$(now_us)
    (
        cd "$WORK"
        exec env CARREL_BIND="127.0.0.1:${PORT}" CARREL_DATA_DIR="$DATA_DIR" \
            CARREL_DATABASE_URL="$DB_URL" RUST_LOG=warn "$BIN" serve
    ) >"$log" 2>&1 &
    SERVER_PID=$!
    while :; do
        code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "$URL" || true)
        [[ "$code" == 200 ]] && break
        t1=$(now_us)
        if ! kill -0 "$SERVER_PID" 2>/dev/null; then
            echo "--- server log ($log) ---" >&2; tail -n 20 "$log" >&2
            die "the server exited before /health answered"
        fi
        (( (t1 - t0) / 1000 < STARTUP_TIMEOUT_MS )) || die "/health did not answer 200 within ${STARTUP_TIMEOUT_MS} ms"
        sleep 0.005
    done
    t1=$(now_us)
    STARTUP_MS=$(( (t1 - t0 + 500) / 1000 ))
}

if curl -s -o /dev/null --max-time 1 "http://127.0.0.1:${PORT}/"; then
    die "something already answers on 127.0.0.1:${PORT}; set BENCH_PORT"
fi

size_bytes=$(stat -c %s "$BIN")
printf '%-18s %s\n' "binary:" "$BIN"
printf '%-18s %s\n' "backend:" "$BACKEND"
printf '%-18s %s\n' "binary size:" "$(awk -v b="$size_bytes" 'BEGIN { printf "%.2f MB", b / 1e6 }') ($size_bytes bytes)"

# (b) start-up time, on fresh state each run
runs=()
for i in $(seq "$STARTUP_RUNS"); do
    fresh_state "startup-$i"
    start_server "startup-$i"
    runs+=("$STARTUP_MS")
    stop_server
done
median=$(printf '%s\n' "${runs[@]}" | sort -n | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else printf "%.1f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }')
printf '%-18s %s ms\n' "start-up runs:" "${runs[*]}"
printf '%-18s %s ms\n' "start-up median:" "$median"

# (c) idle RSS, (d) load, (e) RSS after load: one fresh server
fresh_state load
start_server load
run sleep 1
printf '%-18s %s MiB\n' "idle RSS:" "$(mib "$SERVER_PID")"

run timeout $((WARMUP + 20)) wrk -t"$THREADS" -c"$CONCURRENCY" -d"${WARMUP}s" "$URL" >/dev/null
out="$WORK/wrk.txt"
run timeout $((DURATION + 30)) wrk -t"$THREADS" -c"$CONCURRENCY" -d"${DURATION}s" --latency "$URL" >"$out"
rss_after=$(mib "$SERVER_PID")

rps=$(awk '/^Requests\/sec:/ { print $2 }' "$out")
p50=$(awk '$1 == "50%" { print $2 }' "$out")
p99=$(awk '$1 == "99%" { print $2 }' "$out")
total=$(awk '/requests in/ { print $1 }' "$out")
[[ -n "$rps" && -n "$p50" && -n "$p99" ]] || { cat "$out" >&2; die "cannot parse the wrk output"; }

printf '%-18s %s\n' "load:" "wrk -t${THREADS} -c${CONCURRENCY} -d${DURATION}s --latency GET /health (after ${WARMUP}s warm-up), ${total} requests"
printf '%-18s %s\n' "requests/s:" "$rps"
printf '%-18s %s ms\n' "latency p50:" "$(to_ms "$p50")"
printf '%-18s %s ms\n' "latency p99:" "$(to_ms "$p99")"
non2xx=$(awk -F': *' '/Non-2xx or 3xx responses/ { print $2 }' "$out")
sockerr=$(grep -m1 'Socket errors' "$out" | sed 's/^ *//' || true)
[[ -z "$non2xx" ]] || printf '%-18s %s\n' "errors:" "non-2xx responses: $non2xx"
[[ -z "$sockerr" ]] || printf '%-18s %s\n' "errors:" "$sockerr"
printf '%-18s %s MiB\n' "RSS after load:" "$rss_after"
