# bench/lib.sh: shell functions shared by the bench scripts (sourced, not run).
# A script sets SCRIPT (its name, for messages) and sources this file:
#   SCRIPT=foo.sh
#   source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# What uses state reads the script's globals: SERVER_PID (the running server),
# CHILD_PID (the command `run` waits for), PG_DB (a scratch PostgreSQL database).
# shellcheck shell=bash

die() { echo "${SCRIPT:-bench}: $*" >&2; exit 1; }

# Refuses anything but the two backends.
check_backend() {
    case "$1" in
        sqlite | postgres) ;;
        *) die "backend must be sqlite or postgres, not '$1'" ;;
    esac
}

# Reproducible configuration: nothing inherited from the caller.
clear_carrel_env() {
    while IFS= read -r var; do unset "$var"; done < <(compgen -e | grep '^CARREL_' || true)
}

# Installs wrk with apt-get when it is missing.
ensure_wrk() {
    command -v wrk >/dev/null && return 0
    echo "wrk not found; installing it with apt-get" >&2
    if [[ $(id -u) -eq 0 ]]; then
        apt-get update -qq && apt-get install -y -qq wrk >&2
    else
        sudo apt-get update -qq && sudo apt-get install -y -qq wrk >&2
    fi
}

# The newest bench binary NAME (e.g. circulation_load) built next to the `carrel`
# binary BIN: <dir of BIN>/deps/NAME-<hash>; empty when there is none.
newest_bench_bin() {
    local bin=$1 name=$2
    find "$(dirname "$bin")/deps" -maxdepth 1 -type f -name "${name}-*" ! -name '*.*' \
        -perm -u+x -printf '%T@ %p\n' 2>/dev/null | sort -rn | awk 'NR == 1 { print $2 }'
}

# Fails when something already answers on BASE (another server on the port).
check_port_free() {
    if curl -s -o /dev/null --max-time 1 "$1/"; then
        die "something already answers on ${1#http://}; set BENCH_PORT"
    fi
}

# Runs a command in the background and waits for it, so that INT/TERM traps fire at
# once instead of after the command finishes.
run() {
    "$@" &
    CHILD_PID=$!
    local status=0
    wait "$CHILD_PID" || status=$?
    CHILD_PID=""
    return "$status"
}

# Stops the server SERVER_PID: TERM, up to 5 s for the graceful shutdown, then KILL.
stop_server() {
    [[ -n "${SERVER_PID:-}" ]] || return 0
    if kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        for _ in $(seq 50); do
            kill -0 "$SERVER_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$SERVER_PID" 2>/dev/null || true
    fi
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
}

# Stops the command `run` is waiting for (for cleanup traps).
stop_child() {
    [[ -n "${CHILD_PID:-}" ]] || return 0
    kill -TERM "$CHILD_PID" 2>/dev/null || true
    wait "$CHILD_PID" 2>/dev/null || true
    CHILD_PID=""
}

now_us() { local t=$EPOCHREALTIME; echo "${t/./}"; }

# Converts a wrk duration ("412.00us", "1.23ms", "2.01s") to ms.
to_ms() {
    awk -v v="$1" 'BEGIN {
        n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
        if (u == "us") n /= 1000; else if (u == "s") n *= 1000; else if (u == "m") n *= 60000
        printf "%.2f", n
    }'
}

# CPU ticks (user + system) used so far by process $1.
proc_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
# CPU ticks of this shell's reaped children (wrk, via timeout, once waited for).
child_ticks() { awk '{ print $16 + $17 }' "/proc/$$/stat"; }
# CPU ticks spent running anything on the whole machine, all cores together (user,
# nice, system, irq, softirq; not idle, I/O wait or hypervisor steal).
busy_ticks() { awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8; exit }' /proc/stat; }
# CPU ticks used so far by the PostgreSQL backends of the server's pool (0 without PG_DB).
pg_ticks() {
    [[ -n "${PG_DB:-}" ]] || { echo 0; return 0; }
    local pid sum=0
    for pid in $(psql -d postgres -qtAc "SELECT pid FROM pg_stat_activity
            WHERE datname = '$PG_DB' AND application_name = 'carrel'"); do
        sum=$((sum + $(awk '{ print $14 + $15 }' "/proc/$pid/stat" 2>/dev/null || echo 0)))
    done
    echo "$sum"
}
