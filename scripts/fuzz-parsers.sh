#!/usr/bin/env bash
# Coverage-guided fuzzing (cargo-fuzz, libFuzzer) of the parsers that read outside
# input: the SIP2 codec and framer, the ISO 2709 and MARCXML readers, MARC-8.
#
#   scripts/fuzz-parsers.sh [TARGET ...]     default: every target in fuzz/Cargo.toml
#   CARREL_FUZZ_SECONDS=60                   time per target (default 60)
#
# Needs the nightly toolchain (`rustup toolchain list` shows it on the dev machines) and
# cargo-fuzz (installed with `cargo install --locked` when missing). Not run by .ci/run:
# it is bounded but long; run it after changing a parser. Each target starts from a seed
# corpus made of the test fixtures (MARC files from pymarc, SIP2 messages under
# fuzz/seeds/sip2) plus what earlier runs found (fuzz/corpus, not committed). A crash
# stops the script with the input saved under fuzz/artifacts/TARGET/: turn it into a
# regression test in the parser's crate, then fix the parser.
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_PER_TARGET="${CARREL_FUZZ_SECONDS:-60}"
export CARGO_TARGET_DIR="${CARREL_FUZZ_TARGET_DIR:-/var/tmp/carrel-fuzz-target}"

if ! rustup toolchain list | grep -q '^nightly'; then
  echo "fuzz-parsers.sh: no nightly toolchain; cargo-fuzz needs one (rustup toolchain install nightly)" >&2
  exit 1
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked
fi

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(cargo +nightly fuzz list --fuzz-dir fuzz)
fi

seed_dirs() {
  case "$1" in
    sip2_*) echo fuzz/seeds/sip2 ;;
    marc_iso2709|marc8) echo crates/carrel-marc/tests/fixtures ;;
    marc_marcxml) echo "$(mktemp -d)"; ;;
  esac
}

summary=()
for target in "${targets[@]}"; do
  corpus="fuzz/corpus/$target"
  mkdir -p "$corpus"
  seeds=$(seed_dirs "$target")
  if [ "$target" = marc_marcxml ]; then
    cp crates/carrel-marc/tests/fixtures/*.xml "$seeds"/
  fi
  echo "==> $target (${SECONDS_PER_TARGET}s; seeds: $seeds)"
  log=$(mktemp)
  status=0
  # -rss_limit_mb and -timeout turn memory blow-ups and hangs into findings too.
  cargo +nightly fuzz run --fuzz-dir fuzz "$target" "$corpus" "$seeds" -- \
    -max_total_time="$SECONDS_PER_TARGET" -max_len=65536 -timeout=10 -rss_limit_mb=1024 \
    -print_final_stats=1 >"$log" 2>&1 || status=$?
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || true)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1 || true)
  corpus_size=$(find "$corpus" -type f | wc -l)
  line="$target: ${runs:-?} executions in ${SECONDS_PER_TARGET}s ($(( ${runs:-0} / SECONDS_PER_TARGET ))/s), ${cov:-cov ?}, corpus $corpus_size"
  if [ $status -ne 0 ]; then
    tail -n 60 "$log"
    echo "FAILED $line; the input is under fuzz/artifacts/$target/" >&2
    exit 1
  fi
  summary+=("$line")
  rm -f "$log"
done

echo
echo "fuzzing summary (no crash, hang or memory blow-up found):"
printf '  %s\n' "${summary[@]}"
