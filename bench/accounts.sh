#!/usr/bin/env bash
# bench/accounts.sh: login throughput against the Argon2 hashing limit, and
# authenticated GET /api/v1/users/me throughput, for one backend.
#
# Usage:
#   bench/accounts.sh [BINARY] [BACKEND]
#
#   BINARY   path to a release `carrel` binary (default: target/release/carrel)
#   BACKEND  sqlite (default) or postgres
#
# What it does:
#   1. Runs the argon2_hash bench binary (crates/carrel-server/benches/argon2_hash.rs):
#      the median time of one Argon2id hash at the default parameters (m=19456 KiB,
#      t=2, p=1) through the server's own hasher, one hash at a time, and the hashing
#      limit = cores / median = the most logins/s this machine could verify if its
#      cores scaled perfectly; also the hashes/s of one hashing slot per core running
#      at once ("parallel hashing", what the cores deliver together). It runs again,
#      with the server idle, right before each login run, and each login run is judged
#      against the limit measured next to it (this VM's speed drifts). It is looked up
#      next to BINARY (<dir of BINARY>/deps/
#      argon2_hash-*, the newest) unless BENCH_ARGON2_BIN names it; build it with
#        CARGO_TARGET_DIR=<same target dir> cargo bench -p carrel-server --bench argon2_hash --no-run
#   2. Computes one Argon2id hash of the bench password with `carrel users create` on
#      a throwaway SQLite data dir, then seeds $BENCH_USERS (1000) verified patrons
#      bench0001... sharing that hash with `carrel users import` on the real backend.
#   3. Starts the server and, for each concurrency in $BENCH_CONCURRENCIES ("8 32"):
#      wrk POST /api/v1/auth/login (JSON, correct password, a different seeded user on
#      every request), 2 s warm-up (discarded) then 10 s measured with --latency.
#   4. Logs in $BENCH_TOKENS (200) users with curl to collect access tokens, then for
#      each concurrency: wrk GET /api/v1/users/me with "Authorization: Bearer", cycling
#      through the tokens, warm-up then measured run as above.
#   It prints one "label: value" line each: hash median / p90, hashing limit, and per
#   run requests/s, latency p50/p99 (ms), the CPU used by carrel, by wrk and by
#   everything else (PostgreSQL, kernel softirq, other processes), in cores, from /proc
#   (all share the machine's cores), the server's RSS after the run, and for logins the
#   percentage of the hashing limit and of parallel hashing; then each target as MET or
#   MISSED:
#     logins/s >= 90% of the hashing limit
#     /users/me >= 10,000 requests/s on sqlite, >= 5,000 on postgres
#   A missed target does not fail the script; any non-2xx response or socket error
#   reported by wrk does (exit 1, after the numbers are printed).
#
# Environment knobs (all optional):
#   BENCH_PORT (18080)         BENCH_USERS (1000)      BENCH_TOKENS (200)
#   BENCH_CONCURRENCIES ("8 32")  BENCH_THREADS (2)    BENCH_DURATION (10)  BENCH_WARMUP (2)
#   BENCH_ARGON2_BIN (see 1.)  PGHOST (127.0.0.1)      PGPORT (5432)        PGUSER (postgres)
#
# The server runs with CARREL_ENV=development, CARREL_LOG_FORMAT=json, RUST_LOG=warn,
# CARREL_ACCESS_TOKEN_TTL=1h (tokens outlive the run), CARREL_REQUIRE_EMAIL_VERIFICATION=
# true (imported users are verified) and CARREL_RATE_LIMITS_ENABLED=false (the load
# comes from one address); Argon2 and the hashing concurrency are left at their
# defaults. Any CARREL_* variables in the caller's environment are ignored, and
# everything runs from a temp directory (no .env / carrel.toml is picked up).
# The postgres backend creates a scratch database carrel_bench_accounts_<pid> with
# createdb and drops it on exit. Everything stays on 127.0.0.1; the server is stopped
# and the temp dir removed on exit, including on error or Ctrl-C. wrk is installed
# with apt-get only if it is missing. Total run time is about 80-100 s.
set -euo pipefail
export LC_ALL=C

BIN=${1:-target/release/carrel}
BACKEND=${2:-sqlite}
PORT=${BENCH_PORT:-18080}
USERS=${BENCH_USERS:-1000}
TOKENS=${BENCH_TOKENS:-200}
CONCURRENCIES=${BENCH_CONCURRENCIES:-8 32}
THREADS=${BENCH_THREADS:-2}
DURATION=${BENCH_DURATION:-10}
WARMUP=${BENCH_WARMUP:-2}
STARTUP_TIMEOUT_MS=30000
PASSWORD='Bench-Pass-Phrase-2026'
export PGHOST=${PGHOST:-127.0.0.1} PGPORT=${PGPORT:-5432} PGUSER=${PGUSER:-postgres}

BASE="http://127.0.0.1:${PORT}"

SCRIPT=accounts.sh
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

check_backend "$BACKEND"
[[ -f "$BIN" && -x "$BIN" ]] || die "no executable binary at '$BIN' (build it with cargo build --release)"
BIN=$(realpath "$BIN")
[[ "$USERS" =~ ^[0-9]+$ && "$USERS" -ge 1 && "$USERS" -le 9999 ]] || die "BENCH_USERS must be 1-9999"
[[ "$TOKENS" =~ ^[0-9]+$ && "$TOKENS" -ge 1 && "$TOKENS" -le "$USERS" ]] || die "BENCH_TOKENS must be 1-BENCH_USERS"
command -v curl >/dev/null || die "curl is required"
command -v python3 >/dev/null || die "python3 is required"

if [[ -n "${BENCH_ARGON2_BIN:-}" ]]; then
    ARGON2_BIN=$BENCH_ARGON2_BIN
else
    ARGON2_BIN=$(newest_bench_bin "$BIN" argon2_hash)
fi
[[ -n "$ARGON2_BIN" && -x "$ARGON2_BIN" ]] \
    || die "no argon2_hash bench binary next to $BIN (build it: CARGO_TARGET_DIR=$(dirname "$(dirname "$BIN")") cargo bench -p carrel-server --bench argon2_hash --no-run; or set BENCH_ARGON2_BIN)"

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
PG_DB=""

cleanup() {
    local status=$?
    trap - EXIT INT TERM
    stop_child
    stop_server
    if [[ -n "$PG_DB" ]]; then
        dropdb --if-exists "$PG_DB" 2>/dev/null || echo "accounts.sh: could not drop database $PG_DB" >&2
    fi
    rm -rf "$WORK"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

CLK_TCK=$(getconf CLK_TCK)

check_port_free "$BASE"

printf '%-22s %s\n' "binary:" "$BIN"
printf '%-22s %s\n' "backend:" "$BACKEND"
printf '%-22s %s cores, load average %s (anything else running skews every number)\n' \
    "machine:" "$(nproc)" "$(cut -d' ' -f1-3 /proc/loadavg)"

# --- 1. Argon2 hashing limit, on an idle machine ------------------------------------
# The machine's speed drifts (other tenants share the host's caches and memory), so
# the limit is measured here and again right before each login run, which is judged
# against the limit measured next to it.
argon_out="$WORK/argon2.txt"
measure_hashing() {
    run "$ARGON2_BIN" >"$argon_out" || { cat "$argon_out" >&2; die "the argon2_hash bench failed"; }
    hash_median=$(awk '/^hash median:/ { print $3 }' "$argon_out")
    hash_p90=$(awk '/^hash p90:/ { print $3 }' "$argon_out")
    hash_limit=$(awk '/^hashing limit:/ { print $3 }' "$argon_out")
    cores=$(awk '/^hashing limit:/ { sub(/^\(/, "", $5); print $5 }' "$argon_out")
    parallel=$(awk '/^parallel hashing:/ { print $3 }' "$argon_out")
    parallel_median=$(awk '/^parallel hashing:/ { for (i = 1; i < NF; i++) if ($i == "median") print $(i + 1) }' "$argon_out")
    [[ -n "$hash_median" && -n "$hash_limit" && -n "$cores" && -n "$parallel" ]] \
        || { cat "$argon_out" >&2; die "cannot parse the argon2_hash output"; }
}
print_hashing() {
    printf '%-22s %s ms (p90 %s ms)\n' "${1}hash median:" "$hash_median" "$hash_p90"
    printf '%-22s %s logins/s (%s cores / %s ms)\n' "${1}hashing limit:" "$hash_limit" "$cores" "$hash_median"
    printf '%-22s %s hashes/s (%s slots hashing at once, %s ms per hash meanwhile)\n' \
        "${1}parallel hashing:" "$parallel" "$cores" "${parallel_median:-?}"
}
measure_hashing
printf '%-22s %s\n' "argon2 bench:" "$(head -n1 "$argon_out")"
print_hashing ""

# --- 2. State and seed users --------------------------------------------------------
DATA_DIR="$WORK/data"
mkdir -p "$DATA_DIR"
if [[ "$BACKEND" == postgres ]]; then
    PG_DB="carrel_bench_accounts_$$"
    createdb "$PG_DB"
    DB_URL="postgres://${PGUSER}@${PGHOST}:${PGPORT}/${PG_DB}"
else
    DB_URL="sqlite://${DATA_DIR}/carrel.db"
fi

# The benchmark configuration for data dir $1 and database URL $2, in CARREL_VARS.
carrel_vars() {
    CARREL_VARS=(CARREL_BIND="127.0.0.1:${PORT}" CARREL_DATA_DIR="$1" CARREL_DATABASE_URL="$2"
        CARREL_ENV=development CARREL_LOG_FORMAT=json CARREL_ACCESS_TOKEN_TTL=1h
        CARREL_REQUIRE_EMAIL_VERIFICATION=true CARREL_RATE_LIMITS_ENABLED=false RUST_LOG=warn)
}

# Runs a carrel command (in the foreground) for data dir $1 and database URL $2.
carrel() {
    carrel_vars "$1" "$2"
    shift 2
    (cd "$WORK" && exec env "${CARREL_VARS[@]}" "$BIN" "$@")
}

# The number of seeded users in the benchmark database.
count_users() {
    local sql="SELECT count(*) FROM users WHERE username LIKE 'bench%'"
    if [[ "$BACKEND" == postgres ]]; then
        psql -d "$PG_DB" -qtAc "$sql"
    else
        python3 -c 'import sqlite3, sys
print(sqlite3.connect(sys.argv[1]).execute(sys.argv[2]).fetchone()[0])' "$DATA_DIR/carrel.db" "$sql"
    fi
}

# One Argon2id hash (default parameters) of $PASSWORD, made by the server's own code.
seed_dir="$WORK/seed-hash"
mkdir -p "$seed_dir"
printf '%s' "$PASSWORD" | carrel "$seed_dir" "sqlite://${seed_dir}/carrel.db" \
    users create --email seed@example.org --username seeduser --password-stdin \
    >"$WORK/seed-create.log" 2>&1 || { cat "$WORK/seed-create.log" >&2; die "carrel users create failed"; }
SEED_HASH=$(python3 -c 'import sqlite3, sys
print(sqlite3.connect(sys.argv[1]).execute("SELECT password_hash FROM users").fetchone()[0])' "$seed_dir/carrel.db")
[[ "$SEED_HASH" == '$argon2id$v=19$m=19456,t=2,p=1$'* ]] || die "unexpected seed hash: ${SEED_HASH:0:32}..."

csv="$WORK/users.csv"
{
    echo 'email,username,full_name,role,password_hash'
    for i in $(seq -f '%04g' 1 "$USERS"); do
        printf 'bench%s@example.org,bench%s,Bench User %s,patron,"%s"\n' "$i" "$i" "$i" "$SEED_HASH"
    done
} >"$csv"
t0=$(now_us)
carrel "$DATA_DIR" "$DB_URL" users import "$csv" >"$WORK/import.log" 2>&1 \
    || { cat "$WORK/import.log" >&2; die "carrel users import failed"; }
t1=$(now_us)
imported=$(count_users || true)
[[ "$imported" == "$USERS" ]] || { cat "$WORK/import.log" >&2; die "expected $USERS imported users, found '${imported}'"; }
printf '%-22s %s users bench0001..bench%04d (one shared hash), imported in %s ms\n' \
    "seeded:" "$USERS" "$USERS" "$(( (t1 - t0 + 500) / 1000 ))"

# --- 3. Server ----------------------------------------------------------------------
server_log="$WORK/server.log"
carrel_vars "$DATA_DIR" "$DB_URL"
(cd "$WORK" && exec env "${CARREL_VARS[@]}" "$BIN" serve) >"$server_log" 2>&1 &
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
    sleep 0.01
done

FAILURES=()

# Runs wrk with Lua script $1 at concurrency $2 (label $3): warm-up, then the measured
# run; prints the result lines. Extra arguments go to wrk.
load() {
    local lua=$1 conc=$2 label=$3 url=$4
    shift 4
    local out="$WORK/wrk-${label//[^a-z]/_}-c${conc}.txt"
    run timeout $((WARMUP + 30)) wrk -t"$THREADS" -c"$conc" -d"${WARMUP}s" -s "$lua" "$@" "$url" >/dev/null
    local s0 c0 p0 t0 t1 s1 c1 p1
    s0=$(proc_ticks "$SERVER_PID"); c0=$(child_ticks); p0=$(busy_ticks); t0=$(now_us)
    run timeout $((DURATION + 30)) wrk -t"$THREADS" -c"$conc" -d"${DURATION}s" --latency -s "$lua" "$@" "$url" >"$out"
    t1=$(now_us); s1=$(proc_ticks "$SERVER_PID"); c1=$(child_ticks); p1=$(busy_ticks)
    RPS=$(awk '/^Requests\/sec:/ { print $2 }' "$out")
    local p50 p99 total non2xx sockerr cpu
    p50=$(awk '$1 == "50%" { print $2 }' "$out")
    p99=$(awk '$1 == "99%" { print $2 }' "$out")
    total=$(awk '/requests in/ { print $1 }' "$out")
    [[ -n "$RPS" && -n "$p50" && -n "$p99" ]] || { cat "$out" >&2; die "cannot parse the wrk output"; }
    non2xx=$(awk -F': *' '/Non-2xx or 3xx responses/ { print $2 }' "$out")
    sockerr=$(grep -m1 'Socket errors' "$out" | sed 's/^ *//' || true)
    cpu=$(awk -v s=$((s1 - s0)) -v c=$((c1 - c0)) -v m=$((p1 - p0)) -v hz="$CLK_TCK" -v us=$((t1 - t0)) \
        'BEGIN { w = us / 1e6; s /= hz * w; c /= hz * w; m /= hz * w
            o = m - s - c; if (o < 0) o = 0  # per-process and machine ticks are sampled apart
            printf "carrel %.2f, wrk %.2f, everything else %.2f (machine %.2f) cores", s, c, o, m }')
    printf '%-22s %s\n' "$label c=$conc:" "wrk -t${THREADS} -c${conc} -d${DURATION}s --latency (after ${WARMUP}s warm-up), ${total} requests"
    printf '%-22s %s\n' "  requests/s:" "$RPS"
    printf '%-22s %s ms / %s ms\n' "  latency p50/p99:" "$(to_ms "$p50")" "$(to_ms "$p99")"
    printf '%-22s %s\n' "  non-2xx responses:" "${non2xx:-0}"
    [[ -z "$sockerr" ]] || printf '%-22s %s\n' "  errors:" "$sockerr"
    printf '%-22s %s\n' "  CPU used:" "$cpu"
    printf '%-22s %s MiB\n' "  server RSS after:" "$(awk '/^VmRSS:/ { printf "%.1f", $2 / 1024 }' "/proc/$SERVER_PID/status")"
    [[ -z "$non2xx" ]] || FAILURES+=("$label c=$conc: $non2xx non-2xx responses")
    [[ -z "$sockerr" ]] || FAILURES+=("$label c=$conc: $sockerr")
}

# wrk Lua: each thread starts at a different offset and then cycles.
login_lua="$WORK/login.lua"
cat >"$login_lua" <<EOF
local users, password = ${USERS}, "${PASSWORD}"
local next_id = 0
function setup(thread)
    thread:set("offset", next_id * math.floor(users / ${THREADS}))
    next_id = next_id + 1
end
function init(args)
    n = offset
    headers = { ["Content-Type"] = "application/json" }
end
function request()
    n = n % users + 1
    local body = string.format('{"username":"bench%04d","password":"%s"}', n, password)
    return wrk.format("POST", nil, headers, body)
end
EOF

# --- 4. Logins ----------------------------------------------------------------------
declare -A LOGIN_RPS=() LOGIN_LIMIT=() LOGIN_PARALLEL=()
for c in $CONCURRENCIES; do
    measure_hashing
    echo "hashing before login c=$c (server idle):"
    print_hashing "  "
    LOGIN_LIMIT[$c]=$hash_limit
    LOGIN_PARALLEL[$c]=$parallel
    load "$login_lua" "$c" "login" "$BASE/api/v1/auth/login" --timeout 10s
    LOGIN_RPS[$c]=$RPS
    printf '%-22s %s%% of the hashing limit (%s logins/s)\n' "  vs hashing limit:" \
        "$(awk -v r="$RPS" -v l="$hash_limit" 'BEGIN { printf "%.1f", 100 * r / l }')" "$hash_limit"
    printf '%-22s %s%% of parallel hashing (%s hashes/s)\n' "  vs parallel hashing:" \
        "$(awk -v r="$RPS" -v l="$parallel" 'BEGIN { printf "%.1f", 100 * r / l }')" "$parallel"
done

# --- 5. Authenticated reads ---------------------------------------------------------
tokens="$WORK/tokens.txt"
responses="$WORK/login-responses.txt"
: >"$responses"
for i in $(seq -f '%04g' 1 "$TOKENS"); do
    curl -sS --fail --max-time 30 -H 'Content-Type: application/json' \
        -d "{\"username\":\"bench$i\",\"password\":\"$PASSWORD\"}" "$BASE/api/v1/auth/login" >>"$responses" \
        || die "logging in bench$i for a token failed"
    echo >>"$responses"
done
python3 -c 'import json, sys
for line in open(sys.argv[1]):
    if line.strip():
        print(json.loads(line)["access_token"])' "$responses" >"$tokens"
[[ $(wc -l <"$tokens") -eq "$TOKENS" ]] || die "expected $TOKENS access tokens"
code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $(head -n1 "$tokens")" "$BASE/api/v1/users/me")
[[ "$code" == 200 ]] || die "GET /api/v1/users/me with a fresh token answered $code"
printf '%-22s %s access tokens (bench0001..bench%04d, curl logins)\n' "tokens:" "$TOKENS" "$TOKENS"

me_lua="$WORK/me.lua"
cat >"$me_lua" <<EOF
local tokens = {}
for line in io.lines("${tokens}") do tokens[#tokens + 1] = "Bearer " .. line end
local next_id = 0
function setup(thread)
    thread:set("offset", next_id * math.floor(#tokens / ${THREADS}))
    next_id = next_id + 1
end
function init(args)
    n = offset
    requests = {}
    for i, t in ipairs(tokens) do
        requests[i] = wrk.format("GET", nil, { ["Authorization"] = t })
    end
end
function request()
    n = n % #requests + 1
    return requests[n]
end
EOF

me_target=10000
[[ "$BACKEND" == postgres ]] && me_target=5000
declare -A ME_RPS=()
for c in $CONCURRENCIES; do
    load "$me_lua" "$c" "users/me" "$BASE/api/v1/users/me"
    ME_RPS[$c]=$RPS
done

# --- 6. Targets ---------------------------------------------------------------------
verdict() { awk -v v="$1" -v t="$2" 'BEGIN { print (v >= t) ? "MET" : "MISSED" }'; }
for c in $CONCURRENCIES; do
    pct=$(awk -v r="${LOGIN_RPS[$c]}" -v l="${LOGIN_LIMIT[$c]}" 'BEGIN { printf "%.1f", 100 * r / l }')
    ppct=$(awk -v r="${LOGIN_RPS[$c]}" -v l="${LOGIN_PARALLEL[$c]}" 'BEGIN { printf "%.1f", 100 * r / l }')
    printf '%-22s %s (%s%% of the hashing limit; target >= 90%%; %s%% of parallel hashing)\n' \
        "target login c=$c:" "$(verdict "$pct" 90)" "$pct" "$ppct"
done
for c in $CONCURRENCIES; do
    printf '%-22s %s (%s requests/s; target >= %s on %s)\n' "target users/me c=$c:" \
        "$(verdict "${ME_RPS[$c]}" "$me_target")" "${ME_RPS[$c]}" "$me_target" "$BACKEND"
done

if ((${#FAILURES[@]})); then
    echo "--- server log (last 20 lines) ---" >&2; tail -n 20 "$server_log" >&2
    for f in "${FAILURES[@]}"; do echo "accounts.sh: FAILED: $f" >&2; done
    die "wrk saw error responses; the numbers above are not valid"
fi
