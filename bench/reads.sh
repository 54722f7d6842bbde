#!/usr/bin/env bash
# bench/reads.sh: authenticated reads and catalog list pages (issue 20).
#
# Usage:
#   bench/reads.sh pages   [sqlite|postgres]       GET /items?limit=20 and ?limit=100, GET /users/me
#   bench/reads.sh profile [sqlite|postgres] PATHS perf profile (flat, top symbols) of the server under load on
#                                                  each of PATHS (space-separated, one server)
#
# The release binary is $BENCH_BIN (default target/release/carrel). Each run starts a
# fresh server on 127.0.0.1:$BENCH_PORT (18400) with a temp data dir (and for postgres a
# scratch database carrel_reads_<pid> on 127.0.0.1:5432, dropped on exit), creates a
# librarian, seeds $BENCH_ITEMS (1000) items through the API, then:
#   pages:   wrk -t1 -c$BENCH_CONNS (8) for 3 s warm-up + $BENCH_DURATION (10) s per URL and
#            prints requests/s, p50, p99 and the server's CPU time per request (from
#            /proc/PID/stat), and the CPU cost per extra row: (cpu(100) - cpu(20)) / 80.
#   profile: perf record -F 999 on the server process during a 10 s wrk run, then
#            perf report --no-children --sort symbol (top 25). The release profile keeps
#            symbols but no debuginfo: frames are leaf functions (self time), not call graphs.
# The side-by-side comparison with the FastAPI peer is /work/shared/bench (see bench/README.md).
set -euo pipefail
MODE=${1:?usage: bench/reads.sh pages|profile [sqlite|postgres] [PATH]}
BACKEND=${2:-sqlite}
PROFILE_PATH=${3:-/api/v1/items?limit=100}
BIN=${BENCH_BIN:-$PWD/target/release/carrel}
PORT=${BENCH_PORT:-18400}
ITEMS=${BENCH_ITEMS:-1000}
CONNS=${BENCH_CONNS:-8}
DUR=${BENCH_DURATION:-10}
HZ=$(getconf CLK_TCK)
B=http://127.0.0.1:$PORT
WORK=$(mktemp -d /tmp/carrel-reads.XXXXXX)
DB=""
PID=""
cleanup() {
  [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
  [ -n "$DB" ] && psql -h 127.0.0.1 -U postgres -qc "drop database if exists $DB" >/dev/null 2>&1
  rm -rf "$WORK"
}
trap cleanup EXIT
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
env_run=(env -i PATH="$PATH" CARREL_ENV=development CARREL_BIND=127.0.0.1:$PORT CARREL_DATA_DIR=$WORK/data
         CARREL_LOG_FORMAT=json CARREL_RATE_LIMITS_ENABLED=false CARREL_MAIL_OUTBOX=$WORK/outbox CARREL_AUTO_MIGRATE=true)
if [ "$BACKEND" = postgres ]; then
  DB=carrel_reads_$$
  psql -h 127.0.0.1 -U postgres -qc "create database $DB"
  env_run+=(CARREL_DATABASE_URL=postgres://postgres@127.0.0.1:5432/$DB)
fi
PW='Qz-Lamp-7731!xv-Orbit'
"${env_run[@]}" "$BIN" migrate >/dev/null
printf '%s' "$PW" | "${env_run[@]}" "$BIN" users create --email bench@example.com --username bench \
  --role librarian --password-stdin >/dev/null
"${env_run[@]}" "$BIN" serve > "$WORK/server.log" 2>&1 &
PID=$!
for _ in $(seq 1 100); do curl -fsS -o /dev/null "$B/health" 2>/dev/null && break; sleep 0.2; done
TOK=$(python3 - "$B" "$PW" "$ITEMS" <<'EOF'
import json, sys, urllib.request
b, pw, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
def call(path, body, tok=None):
    req = urllib.request.Request(b + path, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    if tok:
        req.add_header("Authorization", "Bearer " + tok)
    with urllib.request.urlopen(req) as r:
        return json.load(r)
tok = call("/api/v1/auth/login", {"username": "bench", "password": pw})["access_token"]
for i in range(n):
    call("/api/v1/items", {"title": f"Book {i:04d}", "item_type": "book",
                           "description": f"Seeded item number {i} for benchmarking"}, tok)
print(tok)
EOF
)
printf 'wrk.method = "GET"\nwrk.headers["Authorization"] = "Bearer %s"\n' "$TOK" > "$WORK/auth.lua"
cpu_ticks() { awk '{print $14 + $15}' "/proc/$PID/stat"; }
run() {  # path -> "rps p50 p99 cpu_us_per_request"
  wrk -t1 -c"$CONNS" -d3s -s "$WORK/auth.lua" "$B$1" >/dev/null
  local t0 t1 out
  t0=$(cpu_ticks)
  out=$(wrk -t1 -c"$CONNS" -d"${DUR}s" --latency -s "$WORK/auth.lua" "$B$1")
  t1=$(cpu_ticks)
  echo "$out" | awk -v ticks=$((t1 - t0)) -v hz="$HZ" -v dur="$DUR" '
    /^ +50%/ {p50=$2} /^ +99%/ {p99=$2} /Requests\/sec/ {rps=$2}
    /Non-2xx/ {print "  NON-2XX: " $0 > "/dev/stderr"}
    END {printf "%s %s %s %.1f\n", rps, p50, p99, ticks / hz * 1e6 / (rps * dur)}'
}
echo "backend $BACKEND, $ITEMS items, wrk -c$CONNS ${DUR}s; load average: $(cut -d' ' -f1-3 /proc/loadavg)"
case $MODE in
  pages)
    printf '%-28s %10s %9s %9s %12s\n' path req/s p50 p99 "cpu us/req"
    declare -A cpu
    for path in /api/v1/users/me "/api/v1/items?limit=20" "/api/v1/items?limit=100"; do
      read -r rps p50 p99 c < <(run "$path")
      cpu[$path]=$c
      printf '%-28s %10s %9s %9s %12s\n' "$path" "$rps" "$p50" "$p99" "$c"
    done
    awk -v a="${cpu[/api/v1/items?limit=20]}" -v b="${cpu[/api/v1/items?limit=100]}" \
      'BEGIN {printf "server CPU per extra row: %.2f us\n", (b - a) / 80}'
    ;;
  profile)
    # PATH may list several paths (space-separated): each is profiled in turn on the
    # same server and data.
    for path in $PROFILE_PATH; do
      echo "== $path (load average: $(cut -d' ' -f1-3 /proc/loadavg))"
      wrk -t1 -c"$CONNS" -d3s -s "$WORK/auth.lua" "$B$path" >/dev/null
      perf record -F 999 -g -p "$PID" -o "$WORK/perf.data" -- sleep "$DUR" >/dev/null 2>&1 &
      PERF=$!
      t0=$(cpu_ticks)
      wrk -t1 -c"$CONNS" -d"${DUR}s" -s "$WORK/auth.lua" "$B$path" | grep Requests/sec
      t1=$(cpu_ticks)
      wait "$PERF" || true
      echo "server CPU: $(( (t1 - t0) * 1000 / HZ )) ms in ${DUR} s"
      perf report -i "$WORK/perf.data" --no-children --sort dso --stdio -g none 2>/dev/null \
        | grep -v '^#' | grep -v '^$' | head -8 || true
      perf report -i "$WORK/perf.data" --no-children --sort symbol --stdio -g none 2>/dev/null \
        | grep -v '^#' | grep -v '^$' | head -"${BENCH_TOP:-25}" | cut -c1-150 || true
    done
    ;;
  *) echo "unknown mode $MODE"; exit 2 ;;
esac
