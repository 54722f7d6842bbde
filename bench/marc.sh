#!/usr/bin/env bash
# bench/marc.sh: `carrel catalog import` throughput and peak memory on the Library
# of Congress BooksAll sample (~250,000 UTF-8 MARC records, 242 MB) that ships in
# pymarc's source distribution.
#
# Usage:
#   bench/marc.sh [BACKEND...]        BACKEND: sqlite, postgres (default: both)
#
# The file is fetched once into $BENCH_MARC_DIR (default /var/tmp/pymarc) with
#   pip download --no-binary :all: --no-deps pymarc==5.4.0
# and only BooksAll.2016.part01.utf8 is extracted. It is never copied into the
# repository.
#
# The release binary is $BENCH_BIN (default target/release/carrel); build it with
#   CARGO_TARGET_DIR=<dir> cargo build --release -p carrel-server --bin carrel
#
# Each run starts from an empty database (a temp data dir; for postgres a scratch
# database carrel_bench_marc_<pid>, dropped on exit), applies the migrations
# (not timed), then runs `carrel catalog import FILE` (default --match isbn) under
# /usr/bin/time -v and prints: records, wall time, records/s, peak RSS, the
# summary line, carrel's own CPU time (user, system; PostgreSQL's is not
# included), the load average before and after (the machine may be shared:
# read every figure next to it), and the target as MET or MISSED (sqlite >=
# 5,000 records/s, postgres >= 3,000 records/s).
#
# Then (unless BENCH_SEARCH=0) it starts `carrel serve` on the imported catalog
# (127.0.0.1:$BENCH_PORT, default 18080; postgres after VACUUM (ANALYZE)) and runs
# bench/search_shapes.sh with the shapes of bench/marc-queries.tsv (one, two and
# three words, common and rare, titles and authors, completion, a deep page, facets):
# sequential requests, p50/p99 per shape, with the load average before and after.
#
# Knobs: BENCH_BIN, BENCH_MARC_DIR, BENCH_MATCH (isbn), BENCH_SEARCH (1), BENCH_PORT
# (18080), BENCH_QUERIES (bench/marc-queries.tsv), PGHOST (127.0.0.1),
# PGPORT (5432), PGUSER (postgres), BENCH_PG_SOCKET_DIR (unset; when set, carrel
# connects through the Unix socket in that directory instead of TCP).
set -euo pipefail

BIN=${BENCH_BIN:-target/release/carrel}
DIR=${BENCH_MARC_DIR:-/var/tmp/pymarc}
MATCH=${BENCH_MATCH:-isbn}
PGHOST=${PGHOST:-127.0.0.1}
PGPORT=${PGPORT:-5432}
PGUSER=${PGUSER:-postgres}
FILE="$DIR/pymarc-5.4.0/BooksAll.2016.part01.utf8"
SEARCH=${BENCH_SEARCH:-1}
PORT=${BENCH_PORT:-18080}
HERE=$(cd "$(dirname "$0")" && pwd)
QUERIES=${BENCH_QUERIES:-$HERE/marc-queries.tsv}
SERVER_PID=""
BACKENDS=("$@")
[ ${#BACKENDS[@]} -eq 0 ] && BACKENDS=(sqlite postgres)

[ -x "$BIN" ] || { echo "no release binary at $BIN (see the header of $0)" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "/usr/bin/time is needed (apt-get install time)" >&2; exit 1; }

if [ ! -f "$FILE" ]; then
    mkdir -p "$DIR"
    if [ ! -f "$DIR/pymarc-5.4.0.tar.gz" ]; then
        pip download --no-binary :all: --no-deps pymarc==5.4.0 -d "$DIR"
    fi
    tar -xzf "$DIR/pymarc-5.4.0.tar.gz" -C "$DIR" pymarc-5.4.0/BooksAll.2016.part01.utf8
fi

WORK=$(mktemp -d /var/tmp/carrel-bench-marc.XXXXXX)
PGDB="carrel_bench_marc_$$"
stop_server() {
    [ -n "$SERVER_PID" ] || return 0
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
}
cleanup() {
    stop_server
    rm -rf "$WORK"
    psql -h "$PGHOST" -p "$PGPORT" -U "$PGUSER" -d postgres -qAtc "DROP DATABASE IF EXISTS $PGDB" >/dev/null 2>&1 || true
}
trap cleanup EXIT INT TERM

run() {
    local backend=$1 url target
    rm -rf "$WORK/data"
    mkdir -p "$WORK/data"
    case $backend in
        sqlite)
            url="sqlite://$WORK/data/carrel.db"
            target=5000
            ;;
        postgres)
            psql -h "$PGHOST" -p "$PGPORT" -U "$PGUSER" -d postgres -qAtc "DROP DATABASE IF EXISTS $PGDB" >/dev/null
            psql -h "$PGHOST" -p "$PGPORT" -U "$PGUSER" -d postgres -qAtc "CREATE DATABASE $PGDB" >/dev/null
            if [ -n "${BENCH_PG_SOCKET_DIR:-}" ]; then
                url="postgres://localhost/$PGDB?host=$BENCH_PG_SOCKET_DIR&user=$PGUSER"
            else
                url="postgres://$PGUSER@$PGHOST:$PGPORT/$PGDB"
            fi
            target=3000
            ;;
        *) echo "unknown backend $backend" >&2; exit 1 ;;
    esac
    local env=(env -i "PATH=$PATH" CARREL_ENV=development "CARREL_DATA_DIR=$WORK/data"
        "CARREL_DATABASE_URL=$url" CARREL_LOG_FORMAT=json RUST_LOG=warn)
    "${env[@]}" "$BIN" migrate >/dev/null
    local status=0 load_before
    load_before=$(cut -d' ' -f1-3 /proc/loadavg)
    "${env[@]}" /usr/bin/time -v -o "$WORK/time.txt" "$BIN" catalog import --match "$MATCH" \
        --errors "$WORK/report.jsonl" "$FILE" >"$WORK/stdout.txt" 2>"$WORK/stderr.txt" || status=$?
    if [ "$status" -ne 0 ] && [ "$status" -ne 3 ]; then
        echo "$backend: import failed (exit $status):" >&2
        tail -5 "$WORK/stderr.txt" >&2
        exit 1
    fi
    local summary wall secs rss records rate
    summary=$(tail -1 "$WORK/stdout.txt")
    wall=$(sed -n 's/.*Elapsed (wall clock) time (h:mm:ss or m:ss): //p' "$WORK/time.txt")
    secs=$(awk -v t="$wall" 'BEGIN { n = split(t, p, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + p[i]; print s }')
    rss=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$WORK/time.txt")
    records=$(echo "$summary" | awk -F'[ ,]+' '{ print $2 + $4 + $6 + $8 }')
    rate=$(awk -v r="$records" -v s="$secs" 'BEGIN { printf "%.0f", r / s }')
    echo "$backend: records: $records"
    echo "$backend: wall time: ${secs} s"
    echo "$backend: records/s: $rate"
    echo "$backend: carrel CPU: user $(sed -n 's/.*User time (seconds): //p' "$WORK/time.txt") s, system $(sed -n 's/.*System time (seconds): //p' "$WORK/time.txt") s"
    echo "$backend: load average before / after: $load_before / $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "$backend: peak RSS: $(awk -v k="$rss" 'BEGIN { printf "%.1f", k / 1024 }') MiB"
    echo "$backend: summary: $summary"
    echo "$backend: report lines: $(wc -l <"$WORK/report.jsonl")"
    if [ "$rate" -ge "$target" ]; then
        echo "$backend: target >= $target records/s: MET"
    else
        echo "$backend: target >= $target records/s: MISSED"
    fi
    [ "$SEARCH" = 0 ] && return 0
    if [ "$backend" = postgres ]; then
        psql -h "$PGHOST" -p "$PGPORT" -U "$PGUSER" -d "$PGDB" -qAtc 'VACUUM (ANALYZE)' >/dev/null
    fi
    (cd "$WORK" && exec "${env[@]}" CARREL_BIND="127.0.0.1:$PORT" CARREL_RATE_LIMITS_ENABLED=false "$BIN" serve) \
        >"$WORK/server.log" 2>&1 &
    SERVER_PID=$!
    for _ in $(seq 300); do
        [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "http://127.0.0.1:$PORT/health" || true)" = 200 ] && break
        sleep 0.1
    done
    echo "$backend: search (target p99 < 50 ms for every shape but facets):"
    "$HERE/search_shapes.sh" "http://127.0.0.1:$PORT" "$QUERIES" | sed "s/^/$backend:   /"
    stop_server
}

for backend in "${BACKENDS[@]}"; do
    run "$backend"
done
