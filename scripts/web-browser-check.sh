#!/usr/bin/env bash
# Runs scripts/web-browser-check.py (the web pages in a real Chromium, driven by
# Playwright for Python, with axe-core) against the debug `carrel`. Installs what it needs when
# missing: Debian's chromium (Playwright's own browser download does not work
# offline) and Playwright in /var/tmp/web-venv. CARREL_BIN names the binary to
# test (CI passes the one `cargo test` has just built).
set -euo pipefail
repo_root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$repo_root"
# shellcheck source=scripts/lib/python-venv.sh
source scripts/lib/python-venv.sh

if [[ ! -x /usr/bin/chromium ]]; then
    echo "..   installing Debian's chromium"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi
ensure_venv /var/tmp/web-venv "playwright==1.65.3" "axe-playwright-python==0.1.8"

binary="$(carrel_debug_binary)"
CHROMIUM=/usr/bin/chromium /var/tmp/web-venv/bin/python scripts/web-browser-check.py "$binary"
