# Sourced by the scripts that need Python tools from PyPI. Provides
# `ensure_venv DIR REQUIREMENT...`: creates DIR as a virtual environment (once)
# and installs the pinned requirements into it unless they are already there.
# On a fresh Debian machine whose python3 lacks venv/ensurepip it installs
# python3-venv with apt-get first (the CI runs as root).

ensure_venv() {
    local dir="$1"
    shift
    if [[ ! -x "$dir/bin/python" ]]; then
        if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
            echo "..   python3 has no venv/ensurepip; installing python3-venv"
            apt-get update -qq
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
                python3-venv python3-pip >/dev/null
        fi
        rm -rf "$dir"
        python3 -m venv "$dir"
    fi
    local missing=0 req
    for req in "$@"; do
        # `name==version` pins only: compare with what the venv has.
        local name="${req%%==*}" version="${req##*==}"
        if [[ "$("$dir/bin/python" -m pip show "$name" 2>/dev/null | sed -n 's/^Version: //p')" != "$version" ]]; then
            missing=1
        fi
    done
    if [[ "$missing" == 1 ]]; then
        echo "..   installing $* into $dir"
        "$dir/bin/python" -m pip install --quiet --disable-pip-version-check "$@"
    fi
}

# The debug `carrel` binary of this checkout, built if it is missing or stale
# (cargo decides; a no-op when it is fresh). Prints its path. CARREL_BIN names
# a binary to use instead (CI passes the one `cargo test` has just built).
carrel_debug_binary() {
    if [[ -n "${CARREL_BIN:-}" ]]; then
        echo "$CARREL_BIN"
        return
    fi
    local target="${CARGO_TARGET_DIR:-$repo_root/target}"
    cargo build --quiet --locked -p carrel-server --bin carrel >&2
    echo "$target/debug/carrel"
}
