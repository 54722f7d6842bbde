#!/usr/bin/env bash
# Crash and outage tests against live `carrel serve` processes, driven by
# scripts/lib/crash_tests.py (Python standard library only):
#   kill-postgres, kill-sqlite  kill -9 of the server during a stream of checkouts,
#                               returns and payments; after a restart every
#                               acknowledged write is there and no invariant broke
#   pg-outage                   PostgreSQL stopped and started under load: only 503,
#                               /readiness back within 5 s, no acknowledged write lost
#   redis-outage                Redis shut down and restarted under load: the fallback
#                               limiter holds, no 5xx
#   disk-full                   a full file system under the SQLite database and under
#                               the upload store: 503/507, never 500; integrity_check ok
#
#   scripts/crash-tests.sh [TEST...]        (default: all; about a minute)
#
# The outage tests stop and start PostgreSQL and Redis, so the script never uses
# the shared ones: it starts a PRIVATE PostgreSQL cluster (initdb in a temp dir,
# port CARREL_CRASH_PG_PORT, default 5450, or the next free one) and a PRIVATE
# redis-server (port CARREL_CRASH_REDIS_PORT, default 6390, or the next free
# one), and removes both on exit, whatever happens. The full-disk test mounts
# two small tmpfs (or loop ext4) file systems and needs root; without it, it is
# skipped with a notice.
#
# Env: CARREL_BIN, CARGO_TARGET_DIR, CARREL_HARNESS_PORTS (default 18300-18399),
# CARREL_CRASH_KILLS (kills per backend, default 2), CARREL_CRASH_OUTAGE_SECONDS
# (default 4), CARREL_HARNESS_KEEP=1 (keep logs and data).
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"
# shellcheck source=lib/python-venv.sh
source scripts/lib/python-venv.sh

carrel="$(carrel_debug_binary)"
ports="${CARREL_HARNESS_PORTS:-18300-18399}"
pg_port="${CARREL_CRASH_PG_PORT:-5450}"
redis_port="${CARREL_CRASH_REDIS_PORT:-6390}"
# Another run (or anything else) may hold the default ports: take the next free ones.
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for _ in $(seq 1 50); do port_free "$pg_port" && break; pg_port=$((pg_port + 1)); done
for _ in $(seq 1 50); do port_free "$redis_port" && break; redis_port=$((redis_port + 1)); done
port_free "$pg_port" && port_free "$redis_port" || { echo "crash-tests: no free port for the private PostgreSQL or Redis" >&2; exit 1; }
pg_bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
[[ -x "$pg_bin/initdb" ]] || { echo "crash-tests: PostgreSQL server binaries not found under /usr/lib/postgresql" >&2; exit 1; }

work="$(mktemp -d /var/tmp/carrel-crash.XXXXXX)"
pg_dir="$work/pg"
as_pg() {
    # initdb and postgres refuse to run as root.
    if [[ "$(id -u)" == 0 ]]; then
        su postgres -s /bin/bash -c "$*"
    else
        bash -c "$*"
    fi
}
pg_ctl_cmd() { echo "'$pg_bin/pg_ctl' -D '$pg_dir/data' -l '$pg_dir/log' -w -t 60 $*"; }
redis_start_cmd="redis-server --daemonize yes --bind 127.0.0.1 --port $redis_port --save '' --appendonly no --dir '$work' --logfile '$work/redis.log' --pidfile '$work/redis.pid'"

cleanup() {
    local status=$?
    # Always: the private PostgreSQL and Redis go away, mounts are released.
    for mount in "$work/full-db" "$work/full-uploads"; do
        mountpoint -q "$mount" 2>/dev/null && umount -l "$mount" || true
    done
    redis-cli -p "$redis_port" shutdown nosave >/dev/null 2>&1 || true
    if [[ -f "$pg_dir/data/PG_VERSION" ]]; then
        as_pg "$(pg_ctl_cmd -m immediate stop)" >/dev/null 2>&1 || true
    fi
    if [[ -n "${CARREL_HARNESS_KEEP:-}" ]]; then
        echo "kept $work"
    else
        rm -rf "$work"
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM


mkdir -p "$pg_dir"
[[ "$(id -u)" == 0 ]] && chown postgres "$pg_dir" && chmod 755 "$work"
as_pg "'$pg_bin/initdb' -D '$pg_dir/data' -A trust -U postgres --no-sync >/dev/null"
cat >>"$pg_dir/data/postgresql.conf" <<CONF
port = $pg_port
listen_addresses = '127.0.0.1'
unix_socket_directories = '$pg_dir'
max_connections = 100
shared_buffers = 32MB
CONF
as_pg "$(pg_ctl_cmd start)" >/dev/null
bash -c "$redis_start_cmd"
for _ in $(seq 1 40); do redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break; sleep 0.25; done

export CARREL_CRASH_PG_STOP="$(declare -f as_pg); as_pg \"$(pg_ctl_cmd -m fast stop)\" >/dev/null"
export CARREL_CRASH_PG_START="$(declare -f as_pg); as_pg \"$(pg_ctl_cmd start)\" >/dev/null"
export CARREL_CRASH_REDIS_STOP="redis-cli -p $redis_port shutdown nosave >/dev/null 2>&1 || true"
export CARREL_CRASH_REDIS_START="$redis_start_cmd; for _ in \$(seq 1 40); do redis-cli -p $redis_port ping >/dev/null 2>&1 && break; sleep 0.25; done"

status=0
python3 scripts/lib/crash_tests.py "$carrel" "postgres://postgres@127.0.0.1:$pg_port" \
    "redis://127.0.0.1:$redis_port" "$work" "${ports%-*}" "${ports#*-}" "$@" || status=$?
if [[ "$status" != 0 ]]; then
    for log in "$work"/server-*.log; do
        [[ -f "$log" ]] || continue
        echo "--- errors in $(basename "$log")"
        grep -E '"level":"(ERROR|WARN)"' "$log" | tail -n 8 | cut -c1-400 || true
    done
fi
exit "$status"
