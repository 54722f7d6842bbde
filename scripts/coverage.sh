#!/usr/bin/env bash
# Line coverage of the workspace's tests (unit, store conformance and API tests) on
# SQLite and PostgreSQL together, measured with cargo-tarpaulin's LLVM engine
# (source-based coverage, `-Cinstrument-coverage`; no llvm-tools needed).
#
# Prints a per-crate summary and the figure for the account/authentication/crypto
# files listed in AUTH_FILES below, and fails when either is below its floor:
#
#   CARREL_COVERAGE_MIN_TOTAL  floor for all measured lines, in percent (default 0: report only)
#   CARREL_COVERAGE_MIN_AUTH   floor for the AUTH_FILES lines, in percent (default 0: report only)
#
# The PostgreSQL and Redis halves of the tests run against CARREL_TEST_POSTGRES_URL and
# CARREL_TEST_REDIS_URL (defaults: the local services that .ci/run starts). The
# instrumented build goes to "$CARGO_TARGET_DIR/coverage" so it does not invalidate
# the normal test build; the reports (JSON, LCOV) go to that directory's `report/`.
#
# Branch coverage is not reported: tarpaulin measures lines only (its --branch is
# "NOT IMPLEMENTED"), and reading rustc's branch counters (`-Z coverage-options=branch`,
# nightly) needs llvm-cov from the same LLVM as rustc, which this setup does not have.
set -euo pipefail
cd "$(dirname "$0")/.."

TARPAULIN_VERSION=0.37.5
MIN_TOTAL="${CARREL_COVERAGE_MIN_TOTAL:-0}"
MIN_AUTH="${CARREL_COVERAGE_MIN_AUTH:-0}"
export CARREL_TEST_POSTGRES_URL="${CARREL_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}"
export CARREL_TEST_REDIS_URL="${CARREL_TEST_REDIS_URL:-redis://127.0.0.1:6379}"
COVERAGE_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}/coverage"
REPORT_DIR="$COVERAGE_TARGET_DIR/report"

# Account, authentication and crypto code: login, lockout, tokens, sessions, MFA,
# password hashing and policy, PINs, CSRF, secrets. Paths relative to the workspace root.
AUTH_FILES=(
  crates/carrel-core/src/lockout.rs
  crates/carrel-core/src/password_policy.rs
  crates/carrel-crypto/src/csrf.rs
  crates/carrel-crypto/src/error.rs
  crates/carrel-crypto/src/fsutil.rs
  crates/carrel-crypto/src/jwt.rs
  crates/carrel-crypto/src/lib.rs
  crates/carrel-crypto/src/secrets.rs
  crates/carrel-crypto/src/tokens.rs
  crates/carrel-server/src/accounts/login.rs
  crates/carrel-server/src/accounts/mfa.rs
  crates/carrel-server/src/accounts/pins.rs
  crates/carrel-server/src/accounts/recovery.rs
  crates/carrel-server/src/accounts/sessions.rs
  crates/carrel-server/src/auth/cookies.rs
  crates/carrel-server/src/auth/passwords.rs
  crates/carrel-server/src/auth/principal.rs
  crates/carrel-server/src/auth/tokens.rs
  crates/carrel-server/src/http/principal.rs
  crates/carrel-server/src/http/routes/auth.rs
  crates/carrel-server/src/passwords.rs
  crates/carrel-store/src/credentials.rs
  crates/carrel-store/src/mfa.rs
  crates/carrel-store/src/pins.rs
  crates/carrel-store/src/revocation.rs
  crates/carrel-store/src/sessions.rs
)

# Code that no test can run in this process, and why. Nothing else is excluded;
# excluding code to reach a floor is not allowed.
EXCLUDE_FILES=(
  # The `carrel` binary's entry point (argument parsing, runtime start, wiring of the
  # subcommands to library functions). tests/api/cli.rs does run it, but as a child
  # process with a cleared environment, so its profile is not collected. Everything
  # it calls lives in the library and is measured there.
  crates/carrel-server/src/main.rs
)

if ! cargo tarpaulin --version 2>/dev/null | grep -q " $TARPAULIN_VERSION\$"; then
  echo "installing cargo-tarpaulin $TARPAULIN_VERSION"
  cargo install cargo-tarpaulin --version "$TARPAULIN_VERSION" --locked --no-default-features
fi

for file in "${AUTH_FILES[@]}" "${EXCLUDE_FILES[@]}"; do
  [ -f "$file" ] || { echo "coverage.sh: $file does not exist; fix the list" >&2; exit 1; }
done

exclude_args=()
for file in "${EXCLUDE_FILES[@]}"; do exclude_args+=(--exclude-files "$file"); done

mkdir -p "$REPORT_DIR"
rm -f "$REPORT_DIR/lcov.info" "$REPORT_DIR/tarpaulin-report.json"
# --timeout: an instrumented API test binary can run for minutes on a busy machine.
cargo tarpaulin --workspace --engine llvm --locked --skip-clean \
  --target-dir "$COVERAGE_TARGET_DIR" --output-dir "$REPORT_DIR" --out Json Lcov \
  --timeout 900 "${exclude_args[@]}"
# Instrumented build scripts leave their profile in the working directory.
rm -f build_rs_cov.profraw

# Summary from the LCOV report (per source file: SF: path, LF: lines found, LH: lines hit).
auth_list=$(printf '%s\n' "${AUTH_FILES[@]}")
awk -v root="$PWD/" -v auth_list="$auth_list" \
  -v min_total="$MIN_TOTAL" -v min_auth="$MIN_AUTH" '
  BEGIN {
    n = split(auth_list, list, "\n")
    for (i = 1; i <= n; i++) if (list[i] != "") { auth[list[i]] = 1; wanted++ }
  }
  /^SF:/ { file = substr($0, 4); sub("^" root, "", file) }
  /^LF:/ { found[file] += substr($0, 4) }
  /^LH:/ { hit[file] += substr($0, 4) }
  function pct(h, f) { return f ? 100 * h / f : 100 }
  END {
    for (file in found) {
      crate = file
      if (match(file, /^crates\/[^\/]+\//)) crate = substr(file, 8, RLENGTH - 8)
      cf[crate] += found[file]; ch[crate] += hit[file]
      tf += found[file]; th += hit[file]
      if (file in auth) { af += found[file]; ah += hit[file]; seen[file] = 1 }
    }
    printf "\n%-22s %8s %8s %8s\n", "crate", "lines", "covered", "percent"
    fflush(); cmd = "sort"
    for (crate in cf) printf "%-22s %8d %8d %7.2f%%\n", crate, cf[crate], ch[crate], pct(ch[crate], cf[crate]) | cmd
    close(cmd)
    printf "%-22s %8d %8d %7.2f%%\n", "TOTAL", tf, th, pct(th, tf)
    printf "\naccount/auth/crypto files:\n"
    fflush(); cmd = "sort"
    for (file in auth) {
      if (file in seen) printf "  %-52s %5d/%-5d %7.2f%%\n", file, hit[file], found[file], pct(hit[file], found[file]) | cmd
      else printf "  %-52s no coverable lines\n", file | cmd
    }
    close(cmd)
    printf "%-22s %8d %8d %7.2f%%\n\n", "AUTH/CRYPTO", af, ah, pct(ah, af)
    status = 0
    if (pct(th, tf) < min_total) { printf "coverage: total %.2f%% is below the floor of %s%%\n", pct(th, tf), min_total; status = 1 }
    if (pct(ah, af) < min_auth) { printf "coverage: auth/crypto %.2f%% is below the floor of %s%%\n", pct(ah, af), min_auth; status = 1 }
    if (status == 0) printf "coverage: total %.2f%% (floor %s%%), auth/crypto %.2f%% (floor %s%%): OK\n", pct(th, tf), min_total, pct(ah, af), min_auth
    exit status
  }' "$REPORT_DIR/lcov.info"
