#!/usr/bin/env bash
# bench/catalog.sh: catalog search throughput and latency on a large synthetic
# catalog, for one backend and one catalog size.
#
# Usage:
#   bench/catalog.sh [BACKEND] [ITEMS]
#
#   BACKEND  sqlite (default) or postgres
#   ITEMS    catalog size (default 100000); 100000 and 1000000 are the sizes with targets
#
# The release `carrel` binary is $BENCH_BIN (default target/release/carrel); the
# seeding program is the catalog_seed bench target
# (crates/carrel-server/benches/catalog_seed.rs), looked up as the newest
# <dir of BENCH_BIN>/deps/catalog_seed-* unless BENCH_SEED_BIN names it. Build both with
#   CARGO_TARGET_DIR=<dir> cargo build --release -p carrel-server --bin carrel
#   CARGO_TARGET_DIR=<dir> cargo bench -p carrel-server --bench catalog_seed --no-run
#
# What it does:
#   1. Creates fresh state: a temp data dir, and for sqlite the database file
#      <data dir>/carrel.db; for postgres a scratch database carrel_bench_catalog_<pid>
#      (CREATE DATABASE with psql, dropped on exit).
#   2. Seeds ITEMS deterministic synthetic items with catalog_seed (migrations, then
#      bulk_create_items in chunks of 20,000, one transaction each, one copy per item)
#      and reports the wall time of the whole program and its own seeding time.
#      ~10.7 % of items contain "history", exactly 10 contain "zeppelin".
#      postgres only: then runs VACUUM (ANALYZE) on the whole database (timed,
#      reported): the planner statistics, plus the hint bits and visibility map that
#      the first reads after a bulk load would otherwise write, all of which autovacuum
#      would do soon after a bulk load anyway (and would then do during the measurement).
#   3. Starts the server on it and checks each query shape once with curl; for the
#      deep page it follows next_cursor $BENCH_CURSOR_PAGES (50) times with limit=20,
#      so the benchmarked page starts after 1,000 rows.
#   4. For each shape: 5 sequential curl requests (median time_total = unloaded
#      latency), then wrk -t2 -c8 for a 2 s warm-up (discarded) and 10 s measured with
#      --latency (--timeout 10s), each followed by a wait (up to 30 s) until the server
#      and its PostgreSQL backends are idle again (wrk abandons the requests in flight
#      when it stops, and their queries run on), against GET /api/v1/items with:
#        common   ?q=history                                   (relevance sort)
#        rare     ?q=zeppelin                                  (relevance sort)
#        filter   ?item_type=ebook&year_from=1900&year_to=1950&sort=title
#        deep     the filter query + &limit=20&cursor=<cursor of page 51>
#   It prints one "label: value" line each: seeding time and items/s, and per shape
#   requests/s, latency p50/p99 (ms), non-2xx responses, the CPU used by carrel, by the
#   PostgreSQL backends of its pool (postgres only) and by wrk, then each target as MET
#   or MISSED:
#     every shape p99 < 50 ms at <= 100,000 items, < 150 ms above (1,000,000)
#     seeding 1,000,000 items < 120 s wall time (only judged at >= 1,000,000 items)
#   5. Then, one client at a time (bench/search_shapes.sh: 5 warm-up and 200 measured
#      curl requests each), the shapes of $BENCH_WORD_SHAPES (default
#      bench/synthetic-queries.tsv: two and three common words, a deep page of two,
#      completion), each judged against issue 16's p99 < 100 ms. BENCH_WORD_SHAPES=""
#      skips them.
#   A missed target does not fail the script; any non-2xx response or socket error
#   (timeouts included) reported by wrk does (exit 1, after the numbers are printed).
#
# Environment knobs (all optional):
#   BENCH_BIN (target/release/carrel)  BENCH_SEED_BIN (see above)  BENCH_PORT (18080)
#   BENCH_CONCURRENCY (8)  BENCH_THREADS (2)  BENCH_DURATION (10)  BENCH_WARMUP (2)
#   BENCH_CURSOR_PAGES (50)  BENCH_SEED_TIMEOUT (1800 s)  CATALOG_CHUNK / CATALOG_SEED
#   (passed to catalog_seed)  PGHOST (127.0.0.1)  PGPORT (5432)  PGUSER (postgres)
#   BENCH_PG_SOCKET_DIR (unset): postgres only; when set (e.g. /var/run/postgresql) the
#   seeder and the server connect through the Unix socket in that directory instead of
#   TCP to $PGHOST:$PGPORT (psql itself still uses PGHOST). For comparison runs: sqlx
#   0.9.0 did not set TCP_NODELAY, which stalled large statements over TCP (fixed
#   in 0.9.1, which Carrel requires).
#
# The server runs with CARREL_ENV=development, CARREL_LOG_FORMAT=json, RUST_LOG=warn and
# CARREL_RATE_LIMITS_ENABLED=false (all the load comes from one address); everything
# else, the SQLite pragmas and pool size included, is the server's default. Any CARREL_*
# variables in the caller's environment are ignored, and everything runs from a temp
# directory (no .env / carrel.toml is picked up). Everything stays on 127.0.0.1; the
# server is stopped, the scratch database dropped and the temp dir removed on exit,
# including on error or Ctrl-C. wrk is installed with apt-get only if it is missing.
# Disk: about 0.12 GB (sqlite) / 0.15 GB (postgres) per 100,000 items. Run time: the
# seeding (on 2 cores: sqlite ~6-15 s per 100,000 items; postgres with COPY ~16-18 s per
# 100,000 on a busy machine) plus about 70-120 s.
set -euo pipefail
export LC_ALL=C

BACKEND=${1:-sqlite}
ITEMS=${2:-100000}
BIN=${BENCH_BIN:-target/release/carrel}
PORT=${BENCH_PORT:-18080}
CONCURRENCY=${BENCH_CONCURRENCY:-8}
THREADS=${BENCH_THREADS:-2}
DURATION=${BENCH_DURATION:-10}
WARMUP=${BENCH_WARMUP:-2}
CURSOR_PAGES=${BENCH_CURSOR_PAGES:-50}
SEED_TIMEOUT=${BENCH_SEED_TIMEOUT:-1800}
PG_SOCKET_DIR=${BENCH_PG_SOCKET_DIR:-}
WORD_SHAPES=${BENCH_WORD_SHAPES-$(dirname "${BASH_SOURCE[0]}")/synthetic-queries.tsv}
STARTUP_TIMEOUT_MS=60000
export PGHOST=${PGHOST:-127.0.0.1} PGPORT=${PGPORT:-5432} PGUSER=${PGUSER:-postgres}

BASE="http://127.0.0.1:${PORT}"
FILTER='item_type=ebook&year_from=1900&year_to=1950&sort=title'

SCRIPT=catalog.sh
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

check_backend "$BACKEND"
[[ "$ITEMS" =~ ^[0-9]+$ && "$ITEMS" -ge 1000 && "$ITEMS" -le 100000000 ]] || die "ITEMS must be a number, 1000-100000000"
[[ "$CURSOR_PAGES" =~ ^[0-9]+$ && "$CURSOR_PAGES" -ge 1 ]] || die "BENCH_CURSOR_PAGES must be >= 1"
[[ -f "$BIN" && -x "$BIN" ]] || die "no executable binary at '$BIN' (set BENCH_BIN; build it with cargo build --release)"
BIN=$(realpath "$BIN")
if [[ -n "${BENCH_SEED_BIN:-}" ]]; then
    SEED_BIN=$BENCH_SEED_BIN
else
    SEED_BIN=$(newest_bench_bin "$BIN" catalog_seed)
fi
[[ -n "$SEED_BIN" && -x "$SEED_BIN" ]] \
    || die "no catalog_seed bench binary next to $BIN (build it: CARGO_TARGET_DIR=$(dirname "$(dirname "$BIN")") cargo bench -p carrel-server --bench catalog_seed --no-run; or set BENCH_SEED_BIN)"
SEED_BIN=$(realpath "$SEED_BIN")
command -v curl >/dev/null || die "curl is required"
command -v python3 >/dev/null || die "python3 is required"

clear_carrel_env

ensure_wrk

if [[ "$BACKEND" == postgres ]]; then
    command -v psql >/dev/null || die "psql (PostgreSQL client) is required for the postgres backend"
    psql -d postgres -qtAc 'select 1' >/dev/null 2>&1 \
        || die "cannot reach PostgreSQL as $PGUSER@$PGHOST:$PGPORT"
fi

WORK=$(mktemp -d -t carrel-bench.XXXXXX)
SERVER_PID=""
CHILD_PID=""
PG_DB=""

cleanup() {
    local status=$?
    trap - EXIT INT TERM
    stop_child
    stop_server
    if [[ -n "$PG_DB" ]]; then
        psql -d postgres -qtAc "DROP DATABASE IF EXISTS \"$PG_DB\" WITH (FORCE)" >/dev/null 2>&1 \
            || echo "catalog.sh: could not drop database $PG_DB" >&2
    fi
    rm -rf "$WORK"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

CLK_TCK=$(getconf CLK_TCK)
# Waits (up to 30 s) until the server and its PostgreSQL backends are idle: wrk
# abandons the requests in flight when it stops, and their queries run on.
settle() {
    local a b active
    for _ in $(seq 100); do
        a=$(( $(proc_ticks "$SERVER_PID") + $(pg_ticks) ))
        sleep 0.2
        b=$(( $(proc_ticks "$SERVER_PID") + $(pg_ticks) ))
        active=0
        [[ -z "$PG_DB" ]] || active=$(psql -d postgres -qtAc "SELECT count(*) FROM pg_stat_activity
            WHERE datname = '$PG_DB' AND application_name = 'carrel' AND state = 'active'")
        (( b - a <= 2 && active == 0 )) && return 0
    done
    echo "catalog.sh: warning: the server was still busy 30 s after wrk stopped" >&2
}

check_port_free "$BASE"

p99_target=50
(( ITEMS > 100000 )) && p99_target=150

printf '%-20s %s\n' "binary:" "$BIN"
printf '%-20s %s\n' "seeder:" "$SEED_BIN"
printf '%-20s %s, %s items\n' "backend:" "$BACKEND" "$ITEMS"
[[ "$BACKEND" != postgres || -z "$PG_SOCKET_DIR" ]] \
    || printf '%-20s %s\n' "postgres via:" "Unix socket in $PG_SOCKET_DIR (BENCH_PG_SOCKET_DIR), not TCP"
printf '%-20s %s cores, load average %s (anything else running skews every number)\n' \
    "machine:" "$(nproc)" "$(cut -d' ' -f1-3 /proc/loadavg)"

# --- 1. Fresh state -----------------------------------------------------------------
DATA_DIR="$WORK/data"
mkdir -p "$DATA_DIR"
if [[ "$BACKEND" == postgres ]]; then
    PG_DB="carrel_bench_catalog_$$"
    psql -d postgres -qtAc "CREATE DATABASE \"$PG_DB\"" >/dev/null
    if [[ -n "$PG_SOCKET_DIR" ]]; then
        DB_URL="postgres://${PGUSER}@localhost:${PGPORT}/${PG_DB}?host=${PG_SOCKET_DIR}"
    else
        DB_URL="postgres://${PGUSER}@${PGHOST}:${PGPORT}/${PG_DB}"
    fi
else
    DB_URL="sqlite://${DATA_DIR}/carrel.db"
fi

# --- 2. Seed ------------------------------------------------------------------------
seed_out="$WORK/seed.txt"
t0=$(now_us)
run timeout "$SEED_TIMEOUT" env CARREL_DATABASE_URL="$DB_URL" "$SEED_BIN" "$ITEMS" >"$seed_out" 2>"$WORK/seed.err" \
    || { cat "$seed_out" "$WORK/seed.err" >&2; die "catalog_seed failed (or ran over ${SEED_TIMEOUT} s)"; }
t1=$(now_us)
seed_wall=$(awk -v us=$((t1 - t0)) 'BEGIN { printf "%.2f", us / 1e6 }')
seed_s=$(awk '/^seed seconds:/ { print $3 }' "$seed_out")
seed_rate=$(awk '/^items\/s:/ { print $2 }' "$seed_out")
migrate_s=$(awk '/^connect\+migrate:/ { print $2 }' "$seed_out")
history=$(awk '/^history items:/ { sub(/^history items: */, ""); print }' "$seed_out")
zeppelin=$(awk '/^zeppelin items:/ { print $3 }' "$seed_out")
[[ -n "$seed_s" && -n "$seed_rate" ]] || { cat "$seed_out" >&2; die "cannot parse the catalog_seed output"; }
printf '%-20s %s items in %s s (%s items/s; bulk_create_items, chunks of %s)\n' "seeding:" "$ITEMS" "$seed_s" \
    "$seed_rate" "${CATALOG_CHUNK:-20000}"
printf '%-20s %s s (process start, connect, migrations, seeding, exit)\n' "seeding wall time:" "$seed_wall"
printf '%-20s %s s\n' "  connect+migrate:" "$migrate_s"
printf '%-20s "history" in %s, "zeppelin" in %s\n' "  words:" "$history" "$zeppelin"

if [[ "$BACKEND" == postgres ]]; then
    t0=$(now_us)
    run psql -d "$PG_DB" -qtAc 'VACUUM (ANALYZE)' >/dev/null
    t1=$(now_us)
    printf '%-20s VACUUM (ANALYZE) after seeding took %s s\n' "  postgres:" "$(awk -v us=$((t1 - t0)) 'BEGIN { printf "%.2f", us / 1e6 }')"
    size=$(psql -d "$PG_DB" -qtAc "SELECT pg_database_size(current_database())")
else
    size=$(du -cb "$DATA_DIR"/carrel.db* | awk 'END { print $1 }')
fi
printf '%-20s %s\n' "  database size:" "$(awk -v b="$size" 'BEGIN { printf "%.2f GB (%d bytes)", b / 1e9, b }')"

# --- 3. Server ----------------------------------------------------------------------
server_log="$WORK/server.log"
(
    cd "$WORK"
    exec env CARREL_BIND="127.0.0.1:${PORT}" CARREL_DATA_DIR="$DATA_DIR" CARREL_DATABASE_URL="$DB_URL" \
        CARREL_ENV=development CARREL_LOG_FORMAT=json CARREL_RATE_LIMITS_ENABLED=false RUST_LOG=warn \
        "$BIN" serve
) >"$server_log" 2>&1 &
SERVER_PID=$!
t0=$(now_us)
while :; do
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "$BASE/health" || true)
    [[ "$code" == 200 ]] && break
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
        echo "--- server log ($server_log) ---" >&2; tail -n 20 "$server_log" >&2
        die "the server exited before /health answered"
    fi
    (( ($(now_us) - t0) / 1000 < STARTUP_TIMEOUT_MS )) || die "/health did not answer 200 within ${STARTUP_TIMEOUT_MS} ms"
    sleep 0.02
done

# Fetches API path $1 (must answer 200) and prints "<rows> <next_cursor or null>".
page() {
    local body="$WORK/page.json" code
    code=$(curl -sS -o "$body" -w '%{http_code}' --max-time 60 "$BASE$1") || die "GET $1 failed"
    [[ "$code" == 200 ]] || { head -c 500 "$body" >&2; echo >&2; die "GET $1 answered $code"; }
    python3 -c 'import json, sys
page = json.load(open(sys.argv[1]))
print(len(page["data"]), page["next_cursor"] or "null")' "$body"
}

# The deep page: follow next_cursor CURSOR_PAGES times.
cursor_base="/api/v1/items?${FILTER}&limit=20"
cursor=""
t0=$(now_us)
for _ in $(seq "$CURSOR_PAGES"); do
    res=$(page "${cursor_base}${cursor:+&cursor=$cursor}")
    read -r rows next <<<"$res"
    [[ "$rows" == 20 && "$next" != null ]] || die "the filter listing ran out after fewer than $CURSOR_PAGES full pages"
    cursor=$next
done
t1=$(now_us)
printf '%-20s %s pages of 20 followed with curl in %s s (cursor of rows %s-%s)\n' "deep cursor:" "$CURSOR_PAGES" \
    "$(awk -v us=$((t1 - t0)) 'BEGIN { printf "%.2f", us / 1e6 }')" $((CURSOR_PAGES * 20 + 1)) $((CURSOR_PAGES * 20 + 20))

SHAPES=(common rare filter deep)
declare -A PATHS=(
    [common]="/api/v1/items?q=history"
    [rare]="/api/v1/items?q=zeppelin"
    [filter]="/api/v1/items?${FILTER}"
    [deep]="${cursor_base}&cursor=${cursor}"
)
declare -A P99=()
FAILURES=()

for shape in "${SHAPES[@]}"; do
    path=${PATHS[$shape]}
    url="$BASE$path"
    res=$(page "$path")
    read -r rows next <<<"$res"
    [[ "$rows" -gt 0 ]] || die "$shape: GET $path returned no items"
    # Unloaded latency: median of 5 sequential requests.
    single=$(for _ in 1 2 3 4 5; do
        curl -s -o /dev/null --max-time 60 -w '%{time_total}\n' "$url"
    done | sort -n | awk 'NR == 3 { printf "%.2f", $1 * 1000 }')

    out="$WORK/wrk-$shape.txt"
    run timeout $((WARMUP + 30)) wrk -t"$THREADS" -c"$CONCURRENCY" -d"${WARMUP}s" --timeout 10s "$url" >/dev/null
    settle
    s0=$(proc_ticks "$SERVER_PID"); g0=$(pg_ticks); c0=$(child_ticks); t0=$(now_us)
    run timeout $((DURATION + 30)) wrk -t"$THREADS" -c"$CONCURRENCY" -d"${DURATION}s" --timeout 10s --latency "$url" >"$out"
    t1=$(now_us); s1=$(proc_ticks "$SERVER_PID"); g1=$(pg_ticks); c1=$(child_ticks)
    settle
    rps=$(awk '/^Requests\/sec:/ { print $2 }' "$out")
    p50=$(awk '$1 == "50%" { print $2 }' "$out")
    p99=$(awk '$1 == "99%" { print $2 }' "$out")
    total=$(awk '/requests in/ { print $1 }' "$out")
    [[ -n "$rps" && -n "$p50" && -n "$p99" ]] || { cat "$out" >&2; die "cannot parse the wrk output"; }
    non2xx=$(awk -F': *' '/Non-2xx or 3xx responses/ { print $2 }' "$out")
    sockerr=$(grep -m1 'Socket errors' "$out" | sed 's/^ *//' || true)
    cpu=$(awk -v s=$((s1 - s0)) -v g=$((g1 - g0)) -v c=$((c1 - c0)) -v hz="$CLK_TCK" -v us=$((t1 - t0)) -v pg="$PG_DB" \
        'BEGIN { w = us / 1e6; printf "carrel %.2f, ", s / hz / w
                 if (pg != "") printf "postgres backends %.2f, ", g / hz / w
                 printf "wrk %.2f cores", c / hz / w }')
    P99[$shape]=$(to_ms "$p99")
    printf '%-20s GET %s\n' "$shape:" "${path:0:120}$([[ ${#path} -gt 120 ]] && echo '...')"
    printf '%-20s %s rows, next_cursor %s; unloaded (median of 5 curl) %s ms\n' "  first response:" "$rows" \
        "$([[ "$next" == null ]] && echo null || echo set)" "$single"
    printf '%-20s %s\n' "  load:" "wrk -t${THREADS} -c${CONCURRENCY} -d${DURATION}s --latency (after ${WARMUP}s warm-up), ${total} requests"
    printf '%-20s %s\n' "  requests/s:" "$rps"
    printf '%-20s %s ms / %s ms\n' "  latency p50/p99:" "$(to_ms "$p50")" "${P99[$shape]}"
    printf '%-20s %s\n' "  non-2xx responses:" "${non2xx:-0}"
    [[ -z "$sockerr" ]] || printf '%-20s %s\n' "  errors:" "$sockerr"
    printf '%-20s %s\n' "  CPU used:" "$cpu"
    [[ -z "$non2xx" ]] || FAILURES+=("$shape: $non2xx non-2xx responses")
    [[ -z "$sockerr" ]] || FAILURES+=("$shape: $sockerr")
done

# --- 3b. Several words, sequential requests ------------------------------------------
# Two and three common words (issue 16), one client: the latency of one search, as
# marc.sh measures the LC shapes.
declare -A WORD_P99=()
WORD_NAMES=()
if [[ -n "$WORD_SHAPES" ]]; then
    words_out="$WORK/words.txt"
    run "$(dirname "${BASH_SOURCE[0]}")/search_shapes.sh" "$BASE" "$WORD_SHAPES" >"$words_out" \
        || { cat "$words_out" >&2; die "search_shapes.sh failed"; }
    printf '%-20s %s (sequential curl requests)\n' "word shapes:" "$WORD_SHAPES"
    sed 's/^/  /' "$words_out"
    while read -r name _ _ _ p99 _; do
        WORD_P99[$name]=$p99
        WORD_NAMES+=("$name")
    done < <(awk 'NR > 2 && $1 != "load" { print }' "$words_out")
fi

# --- 4. Targets ---------------------------------------------------------------------
for shape in "${SHAPES[@]}"; do
    printf '%-20s %s (p99 %s ms; target < %s ms at %s items)\n' "target $shape:" \
        "$(awk -v v="${P99[$shape]}" -v t="$p99_target" 'BEGIN { print (v < t) ? "MET" : "MISSED" }')" \
        "${P99[$shape]}" "$p99_target" "$ITEMS"
done
for name in "${WORD_NAMES[@]}"; do
    printf '%-20s %s (p99 %s ms; target < 100 ms)\n' "target $name:" \
        "$(awk -v v="${WORD_P99[$name]}" 'BEGIN { print (v < 100) ? "MET" : "MISSED" }')" "${WORD_P99[$name]}"
done
if (( ITEMS >= 1000000 )); then
    printf '%-20s %s (%s s wall time for %s items; target < 120 s for 1,000,000)\n' "target seeding:" \
        "$(awk -v v="$seed_wall" -v n="$ITEMS" 'BEGIN { print (v * 1000000 / n < 120) ? "MET" : "MISSED" }')" "$seed_wall" "$ITEMS"
fi

if ((${#FAILURES[@]})); then
    printf 'catalog.sh: FAILED: %s\n' "${FAILURES[@]}" >&2
    exit 1
fi
