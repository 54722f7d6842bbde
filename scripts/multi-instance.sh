#!/usr/bin/env bash
# Multi-instance harness: three `carrel serve` processes (CARREL_ENV=test) on one
# fresh PostgreSQL database and one Redis, on different ports, driven by
# scripts/lib/multi_instance.py (Python standard library only). It checks that
# migrations race safely at start, a logout on one instance is refused at once
# by the others, rate budgets are shared, each job and notice fires once,
# idempotent payments replay across instances, and a checkout storm spread over
# all instances keeps one open loan per copy. Prints a figures summary; exits
# non-zero if a check fails. Takes about a minute.
#
#   scripts/multi-instance.sh
#
# Env: CARREL_HARNESS_POSTGRES_URL (server URL without a database, default
# postgres://postgres@127.0.0.1:5432; a database carrel_harness_<pid>_<time> is
# created and dropped), CARREL_HARNESS_REDIS_URL (default redis://127.0.0.1:6379),
# CARREL_HARNESS_PORTS (default 18300-18399), CARREL_BIN (a carrel binary to use
# instead of building the debug one), CARGO_TARGET_DIR, CARREL_HARNESS_KEEP=1
# (keep the logs and data dirs), CARREL_HARNESS_STORM_COPIES / _ATTEMPTS / _WORKERS.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"
# shellcheck source=lib/python-venv.sh
source scripts/lib/python-venv.sh

carrel="$(carrel_debug_binary)"
pg_server="${CARREL_HARNESS_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432}"
redis_url="${CARREL_HARNESS_REDIS_URL:-redis://127.0.0.1:6379}"
ports="${CARREL_HARNESS_PORTS:-18300-18399}"

work="$(mktemp -d /var/tmp/carrel-harness.XXXXXX)"
cleanup() {
    if [[ -n "${CARREL_HARNESS_KEEP:-}" ]]; then
        echo "kept $work"
    else
        rm -rf "$work"
    fi
}
trap cleanup EXIT

status=0
python3 scripts/lib/multi_instance.py "$carrel" "$pg_server" "$redis_url" "$work" \
    "${ports%-*}" "${ports#*-}" || status=$?
if [[ "$status" != 0 ]]; then
    for log in "$work"/server-*.log; do
        echo "--- last lines of $(basename "$log")"
        tail -n 15 "$log" | cut -c1-400
    done
fi
exit "$status"
