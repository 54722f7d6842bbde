#!/usr/bin/env bash
# The measured point of the capacity model (docs/capacity.md): 3 `carrel serve`
# processes on one PostgreSQL database and Redis, default Argon2id costs.
# Calibrates the CPU cost of each request kind on one instance, then runs a
# fixed mix over all three and compares the CPU it used (carrel processes and
# the PostgreSQL backends of its database) with what the model predicts from
# the calibrated costs. Driver: scripts/lib/capacity.py (standard library).
#
#   BENCH_BIN=/work/bench-target/release/carrel bench/capacity.sh
#
# Env: BENCH_BIN (or CARREL_BIN; default: the debug build, whose costs are not
# the release ones), CARREL_HARNESS_POSTGRES_URL, CARREL_HARNESS_REDIS_URL,
# CARREL_HARNESS_PORTS, CAPACITY_SECONDS (20), CAPACITY_CALIBRATION_SECONDS (8),
# CAPACITY_WORKERS (8), CAPACITY_ITEMS (400), CAPACITY_CHEAP_ARGON2=1 (the test
# suites' cheap Argon2id costs instead of the defaults, e.g. for a debug build).
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"
# shellcheck source=../scripts/lib/python-venv.sh
source scripts/lib/python-venv.sh

CARREL_BIN="${BENCH_BIN:-${CARREL_BIN:-}}"
carrel="$(carrel_debug_binary)"
pg_server="${CARREL_HARNESS_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432}"
redis_url="${CARREL_HARNESS_REDIS_URL:-redis://127.0.0.1:6379}"
ports="${CARREL_HARNESS_PORTS:-18300-18399}"
work="$(mktemp -d /var/tmp/carrel-capacity.XXXXXX)"
trap 'rm -rf "$work"' EXIT

echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg), binary $carrel"
python3 scripts/lib/capacity.py "$carrel" "$pg_server" "$redis_url" "$work" "${ports%-*}" "${ports#*-}"
