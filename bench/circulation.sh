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
#      store; BENCH_MATRIX_ROWS=200 also fills the rule matrix to 200 rows (every
#      checkout then resolves against it); postgres: VACUUM (ANALYZE) afterwards. A librarian is created with
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
# 127.0.0.1/5432/postgres. Run time: about 30-60 s. The set-up is shared with
# bench/sip2.sh (bench/lib/circulation_common.sh).
set -euo pipefail
export LC_ALL=C
SCRIPT=circulation.sh
# shellcheck source=bench/lib/circulation_common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/circulation_common.sh"

BACKEND=${1:-sqlite}
case "$BACKEND" in
    sqlite) TARGET=500 ;;
    postgres) TARGET=300 ;;
    *) die "backend must be sqlite or postgres, not '$BACKEND'" ;;
esac
circ_init "$BACKEND"
circ_seed
circ_start_server
circ_login
circ_http_load "$WORK/load.txt"

rate=$(value_of cycles/s "$WORK/load.txt")
errors=$(value_of errors "$WORK/load.txt")
if awk -v r="$rate" -v t="$TARGET" 'BEGIN { exit !(r >= t) }'; then
    echo "target >= $TARGET cycles/s: MET ($rate)"
else
    echo "target >= $TARGET cycles/s: MISSED ($rate)"
fi
[[ "$errors" == 0 ]] || die "$errors error responses during the run"
