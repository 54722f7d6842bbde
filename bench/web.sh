#!/usr/bin/env bash
# bench/web.sh: the web pages (issue 18): server time of the catalog search page
# `/?q=...` on a large synthetic catalog, and the byte size of every main page.
#
# Usage:
#   bench/web.sh [BACKEND]
#
#   BACKEND  sqlite (default) or postgres
#
# The release `carrel` binary is $BENCH_BIN (default target/release/carrel); the
# seeding program is the catalog_seed bench target, the newest
# <dir of BENCH_BIN>/deps/catalog_seed-* unless BENCH_SEED_BIN names it (build both as
# bench/catalog.sh says). What it does:
#   1. Seeds $BENCH_ITEMS (100000) deterministic synthetic items with catalog_seed (as
#      bench/catalog.sh does: ~10.7 % contain "history", exactly 10 "zeppelin"; one
#      copy each), on PostgreSQL followed by VACUUM (ANALYZE).
#   2. Starts the server, creates a librarian ("bench") and a patron ("reader") with
#      `carrel users create`, and signs both in through the /login form (curl keeps
#      the cookies; the CSRF field is read from the page, as a browser would).
#   3. Search page: every query of QUERIES below, first once to warm up, then
#      $BENCH_REPEAT (20) sequential requests each; per request curl's
#      time_starttransfer (first byte of the answer: the server's time plus a
#      loopback round trip, the page is rendered before its first byte is sent).
#      Prints p50 and p99 per query and over all requests. The page counts its
#      facets (a pass over every match) only when asked (its "Refine by..." link,
#      `facets=1`): FACET_QUERIES are measured and reported apart, not in the total.
#   4. Page weight: the HTML bytes of every main page (search with and without
#      words, an item, sign-in, registration, the account, the desk with a patron
#      found) plus the one stylesheet; each must stay under 100 KB (there are no
#      images and no scripts). A page over it fails the run (exit 1).
#
# Knobs: BENCH_BIN, BENCH_SEED_BIN, BENCH_ITEMS (100000), BENCH_REPEAT (20),
# BENCH_PORT (18090), BENCH_SEED_TIMEOUT (1800 s), PGHOST/PGPORT/PGUSER (127.0.0.1,
# 5432, postgres). The server runs with CARREL_ENV=development,
# CARREL_RATE_LIMITS_ENABLED=false and RUST_LOG=warn; CARREL_* variables from the
# caller are ignored; everything stays on 127.0.0.1 and is removed on exit (the
# scratch database carrel_bench_web_<pid> is dropped), including on error or Ctrl-C.
# Disk: about 0.12 GB (sqlite) / 0.15 GB (postgres) per 100,000 items.
set -euo pipefail
export LC_ALL=C

BACKEND=${1:-sqlite}
ITEMS=${BENCH_ITEMS:-100000}
REPEAT=${BENCH_REPEAT:-20}
BIN=${BENCH_BIN:-target/release/carrel}
PORT=${BENCH_PORT:-18090}
SEED_TIMEOUT=${BENCH_SEED_TIMEOUT:-1800}
STARTUP_TIMEOUT_MS=60000
PAGE_LIMIT=100000
export PGHOST=${PGHOST:-127.0.0.1} PGPORT=${PGPORT:-5432} PGUSER=${PGUSER:-postgres}
BASE="http://127.0.0.1:${PORT}"
PASSWORD='Quiet-Lantern-Orchard-42'

# The fixed search queries (query strings of `/`): a common word, a rare one, two
# words, a word with each filter, a word that matches nothing.
QUERIES=(
    "q=history"
    "q=zeppelin"
    "q=history+zeppelin"
    "q=history&item_type=book"
    "q=history&year_from=1900&year_to=1950"
    "q=history&available=true"
    "q=nosuchwordanywhere"
)
# The same searches with their counts asked for (reported apart).
FACET_QUERIES=(
    "q=history&facets=1"
    "q=zeppelin&facets=1"
    "q=history&item_type=book&facets=1"
)

SCRIPT=web.sh
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

check_backend "$BACKEND"
[[ "$ITEMS" =~ ^[0-9]+$ && "$ITEMS" -ge 100 ]] || die "BENCH_ITEMS must be a number >= 100"
[[ "$REPEAT" =~ ^[0-9]+$ && "$REPEAT" -ge 1 ]] || die "BENCH_REPEAT must be >= 1"
[[ -f "$BIN" && -x "$BIN" ]] || die "no executable binary at '$BIN' (set BENCH_BIN; build it with cargo build --release)"
BIN=$(realpath "$BIN")
SEED_BIN=${BENCH_SEED_BIN:-$(newest_bench_bin "$BIN" catalog_seed)}
[[ -n "$SEED_BIN" && -x "$SEED_BIN" ]] \
    || die "no catalog_seed bench binary next to $BIN (see bench/catalog.sh; or set BENCH_SEED_BIN)"
SEED_BIN=$(realpath "$SEED_BIN")
command -v curl >/dev/null || die "curl is required"
clear_carrel_env
if [[ "$BACKEND" == postgres ]]; then
    command -v psql >/dev/null || die "psql is required for the postgres backend"
    psql -d postgres -qtAc 'select 1' >/dev/null 2>&1 || die "cannot reach PostgreSQL as $PGUSER@$PGHOST:$PGPORT"
fi

WORK=$(mktemp -d -t carrel-bench-web.XXXXXX)
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
            || echo "web.sh: could not drop database $PG_DB" >&2
    fi
    rm -rf "$WORK"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
check_port_free "$BASE"

printf '%-16s %s\n' "binary:" "$BIN" "seeder:" "$SEED_BIN"
printf '%-16s %s, %s items, %s requests per query\n' "backend:" "$BACKEND" "$ITEMS" "$REPEAT"
printf '%-16s %s cores, load average %s (anything else running skews every number)\n' \
    "machine:" "$(nproc)" "$(cut -d' ' -f1-3 /proc/loadavg)"

# --- 1. Seed --------------------------------------------------------------------------
DATA_DIR="$WORK/data"
mkdir -p "$DATA_DIR"
if [[ "$BACKEND" == postgres ]]; then
    PG_DB="carrel_bench_web_$$"
    psql -d postgres -qtAc "CREATE DATABASE \"$PG_DB\"" >/dev/null
    DB_URL="postgres://${PGUSER}@${PGHOST}:${PGPORT}/${PG_DB}"
else
    DB_URL="sqlite://${DATA_DIR}/carrel.db"
fi
server_env=(env CARREL_DATA_DIR="$DATA_DIR" CARREL_DATABASE_URL="$DB_URL" CARREL_ENV=development
    CARREL_BIND="127.0.0.1:${PORT}" CARREL_PUBLIC_URL="$BASE" CARREL_LOG_FORMAT=json
    CARREL_RATE_LIMITS_ENABLED=false CARREL_MAIL_OUTBOX="$WORK/outbox" RUST_LOG=warn)
t0=$(now_us)
run timeout "$SEED_TIMEOUT" env CARREL_DATABASE_URL="$DB_URL" "$SEED_BIN" "$ITEMS" >"$WORK/seed.txt" 2>"$WORK/seed.err" \
    || { cat "$WORK/seed.txt" "$WORK/seed.err" >&2; die "catalog_seed failed (or ran over ${SEED_TIMEOUT} s)"; }
printf '%-16s %s items in %s s\n' "seeding:" "$ITEMS" "$(awk -v us=$(($(now_us) - t0)) 'BEGIN { printf "%.1f", us / 1e6 }')"
[[ "$BACKEND" != postgres ]] || run psql -d "$PG_DB" -qtAc 'VACUUM (ANALYZE)' >/dev/null

# --- 2. Server and two signed-in browsers ---------------------------------------------
for who in "bench librarian" "reader patron"; do
    read -r name role <<<"$who"
    printf '%s' "$PASSWORD" | (cd "$WORK" && "${server_env[@]}" "$BIN" users create --email "$name@example.org" \
        --username "$name" --role "$role" --password-stdin) >/dev/null
done
(cd "$WORK" && exec "${server_env[@]}" "$BIN" serve) >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
t0=$(now_us)
until [[ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "$BASE/health" || true)" == 200 ]]; do
    kill -0 "$SERVER_PID" 2>/dev/null || { tail -n 20 "$WORK/server.log" >&2; die "the server exited before /health answered"; }
    (( ($(now_us) - t0) / 1000 < STARTUP_TIMEOUT_MS )) || die "/health did not answer within ${STARTUP_TIMEOUT_MS} ms"
    sleep 0.05
done

# Signs USER in through the /login form into cookie jar $WORK/USER.jar.
sign_in() {
    local jar="$WORK/$1.jar" csrf code
    csrf=$(curl -s -c "$jar" -b "$jar" "$BASE/login" | sed -n 's/.*name="csrf" value="\([^"]*\)".*/\1/p' | head -n 1)
    [[ -n "$csrf" ]] || die "no CSRF field on /login"
    code=$(curl -s -o /dev/null -w '%{http_code}' -c "$jar" -b "$jar" -H "Origin: $BASE" \
        --data-urlencode "csrf=$csrf" --data-urlencode "username=$1" --data-urlencode "password=$PASSWORD" \
        --data-urlencode "next=/account" "$BASE/login")
    [[ "$code" == 303 ]] || die "signing in $1 through /login answered $code"
}
sign_in bench
sign_in reader

# --- 3. Server time of the search page ------------------------------------------------
# Prints the 50th and 99th percentiles (nearest rank) of the numbers in file $1, in ms.
percentiles() {
    sort -n "$1" | awk '{ v[NR] = $1 } END {
        p50 = int(NR * 0.50 + 0.999999); p99 = int(NR * 0.99 + 0.999999)
        printf "%8.1f %8.1f", v[p50] * 1000, v[p99] * 1000 }'
}
printf '\n%-42s %8s %8s %9s\n' "search page /?..." "p50 ms" "p99 ms" "bytes"
: >"$WORK/all.txt"
measure() {
    url="$BASE/?$query"
    code=$(curl -s -o "$WORK/page.html" -w '%{http_code}' "$url")
    [[ "$code" == 200 ]] || die "GET /?$query answered $code"
    grep -q 'id="results-heading"' "$WORK/page.html" || die "GET /?$query: not the search page"
    : >"$WORK/times.txt"
    for _ in $(seq "$REPEAT"); do
        read -r code seconds < <(curl -s -o /dev/null -w '%{http_code} %{time_starttransfer}\n' "$url")
        [[ "$code" == 200 ]] || die "GET /?$query answered $code"
        echo "$seconds" >>"$WORK/times.txt"
    done
    printf '%-42s %s %9s\n' "$query" "$(percentiles "$WORK/times.txt")" "$(wc -c <"$WORK/page.html")"
}
for query in "${QUERIES[@]}"; do
    measure
    cat "$WORK/times.txt" >>"$WORK/all.txt"
done
printf '%-42s %s\n' "all $(( ${#QUERIES[@]} * REPEAT )) requests" "$(percentiles "$WORK/all.txt")"
printf '\n%-42s %8s %8s %9s\n' "with facets (on request)" "p50 ms" "p99 ms" "bytes"
for query in "${FACET_QUERIES[@]}"; do
    measure
done

# --- 4. Page weight -------------------------------------------------------------------
item=$(curl -s "$BASE/api/v1/items?q=zeppelin&limit=1" | sed -n 's/.*"id":"\([0-9a-f-]\{36\}\)".*/\1/p' | head -n 1)
[[ -n "$item" ]] || die "no item found for the item page"
css=$(curl -s "$BASE/" | sed -n 's/.*<link rel="stylesheet" href="\([^"]*\)".*/\1/p' | head -n 1)
printf '\n%-42s %9s %s\n' "page" "bytes" "(limit $PAGE_LIMIT, before images: there are none)"
failed=0
for spec in "anon /" "anon /?q=history" "anon /?q=history&facets=1" "anon /items/$item" "anon /login" "anon /register" \
    "reader /account" "bench /desk" "bench /desk?find=reader" "anon $css"; do
    read -r who path <<<"$spec"
    jar_args=()
    [[ "$who" == anon ]] || jar_args=(-b "$WORK/$who.jar")
    code=$(curl -s -o "$WORK/page.html" -w '%{http_code}' "${jar_args[@]}" "$BASE$path")
    bytes=$(wc -c <"$WORK/page.html")
    verdict=ok
    if [[ "$code" != 200 ]]; then verdict="FAIL (status $code)"; failed=1
    elif (( bytes >= PAGE_LIMIT )); then verdict="FAIL (over the limit)"; failed=1
    fi
    printf '%-42s %9s %s\n' "$path ($who)" "$bytes" "$verdict"
done
exit "$failed"
