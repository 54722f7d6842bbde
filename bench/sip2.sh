#!/usr/bin/env bash
# bench/sip2.sh: SIP2 checkout (11) + checkin (09) pairs per second and p99 per
# message, with 8 terminals, against the HTTP checkout + return rate measured in
# the same sitting on the same server and data, for one backend.
#
# Usage:
#   bench/sip2.sh [BACKEND]        BACKEND: sqlite (default) or postgres
#
# Binaries and set-up as bench/circulation.sh (bench/lib/circulation_common.sh):
# the release `carrel` ($BENCH_BIN) and the circulation_load bench target. Build:
#   CARGO_TARGET_DIR=<dir> cargo build --release -p carrel-server --bin carrel
#   CARGO_TARGET_DIR=<dir> cargo bench -p carrel-server --bench circulation_load --no-run
#
# What it does:
#   1. The circulation.sh seed (10,000 patrons with cards BENCH-<n>, 100,000 copies),
#      with BENCH_PIN (2468) as every patron's PIN; a terminal account
#      `bench-kiosk` (`carrel sip2 accounts add`).
#   2. One server with the HTTP API on BENCH_PORT (18080) and SIP2 on
#      BENCH_SIP2_PORT (18081), default settings otherwise (rate limits off, as for
#      circulation.sh; Argon2id 19 MiB/2 passes for the PINs).
#   3. The HTTP load of circulation.sh (8 workers, checkout + return, 2 s warm-up,
#      10 s measured), then the SIP2 load (`circulation_load sip2`): 8 terminals,
#      each logged in once, looping 11 (a random patron's card and PIN) and 09 of
#      the same copy, 2 s warm-up, 10 s measured; a patron keeps the terminal for
#      BENCH_SIP2_SESSION checkouts (default "1 5 5+63": one run per value; "+63"
#      signs each new patron in first with a 63 carrying the PIN, as kiosks do, so
#      the one PIN hash per patron lands on the 63 and the 11s find it remembered).
#   4. For each SIP2 run: pairs/s, pair/11/09 p50 and p99 (ms), CPU and load
#      average, and the targets: 11 and 09 p99 under 10 ms, pairs/s at least 80 %
#      of the HTTP cycles/s. Any error answer fails the script (exit 1).
#
# Everything stays on 127.0.0.1; the server is stopped, the database dropped and
# the temp dir removed on exit. Run time: about 60-90 s.
set -euo pipefail
export LC_ALL=C
SCRIPT=sip2.sh
# shellcheck source=bench/lib/circulation_common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/circulation_common.sh"

BACKEND=${1:-sqlite}
SIP2_PORT=${BENCH_SIP2_PORT:-18081}
SESSIONS=${BENCH_SIP2_SESSION_RUNS:-${BENCH_SIP2_SESSION:-1 5 5+63}}
TERMINAL_PASSWORD='Bench-Kiosk-Heron-2026'
export BENCH_PIN=${BENCH_PIN:-2468}

circ_init "$BACKEND"
circ_seed
printf '%s' "$TERMINAL_PASSWORD" | "$BIN" sip2 accounts add --login bench-kiosk --institution bench \
    --password-stdin >/dev/null
export CARREL_SIP2_BIND="127.0.0.1:${SIP2_PORT}"
circ_start_server
circ_login

echo "HTTP checkout + return (circulation.sh load):"
circ_http_load "$WORK/http.txt"
http_rate=$(value_of cycles/s "$WORK/http.txt")
[[ "$(value_of errors "$WORK/http.txt")" == 0 ]] || die "HTTP errors during the run"

failed=0
for session in $SESSIONS; do
    sign_in=0
    if [[ "$session" == *+63 ]]; then sign_in=1; session=${session%+63}; fi
    echo "SIP2 checkout (11) + checkin (09), $session checkout(s) per patron, 63 sign-in first: $sign_in:"
    BENCH_SIP2_SESSION=$session BENCH_SIP2_SIGN_IN=$sign_in cpu_report "$WORK/sip2.txt" \
        "$LOAD_BIN" sip2 "127.0.0.1:${SIP2_PORT}" bench-kiosk "$TERMINAL_PASSWORD" "$WORK/patrons.txt"
    rate=$(value_of pairs/s "$WORK/sip2.txt")
    p99_11=$(value_of "11 p99 ms" "$WORK/sip2.txt")
    p99_09=$(value_of "09 p99 ms" "$WORK/sip2.txt")
    awk -v r="$rate" -v h="$http_rate" -v a="$p99_11" -v b="$p99_09" 'BEGIN {
        printf "  SIP2/HTTP rate:      %.0f %% (%s / %s)\n", 100 * r / h, r, h;
        printf "  target p99 < 10 ms:  %s (11: %s, 09: %s)\n", (a < 10 && b < 10) ? "MET" : "MISSED", a, b;
        printf "  target >= 80 %% of HTTP: %s\n", (r >= 0.8 * h) ? "MET" : "MISSED" }'
    [[ "$(value_of errors "$WORK/sip2.txt")" == 0 ]] || failed=1
done
[[ "$failed" == 0 ]] || die "SIP2 error answers during the run"
