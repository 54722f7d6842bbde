#!/usr/bin/env bash
# Lines of every `async fn` in the JSON API's route files (from the `async fn`
# line to its closing brace), then the median and the longest, and every
# handler over the limit (default 40 lines).
#
#   scripts/handler-lines.sh [--all] [--limit N] [DIR]
#
# DIR defaults to crates/carrel-server/src/http/routes. --all prints every
# handler, not only those over the limit.
set -euo pipefail
limit=40
all=0
dir=""
while [ $# -gt 0 ]; do
    case "$1" in
        --all) all=1 ;;
        --limit) limit="$2"; shift ;;
        *) dir="$1" ;;
    esac
    shift
done
root="$(cd "$(dirname "$0")/.." && pwd)"
dir="${dir:-$root/crates/carrel-server/src/http/routes}"

counts="$(mktemp)"
trap 'rm -f "$counts"' EXIT
for file in "$dir"/*.rs; do
    awk -v file="$(basename "$file")" '
        # A top-level (or impl-level) async fn: remember where it starts and
        # its indentation; it ends at the first "}" line with that indentation.
        !in_fn && /^[[:space:]]*(pub(\([a-z]+\))? )?async fn [a-z_0-9]+/ {
            match($0, /async fn [a-z_0-9]+/)
            name = substr($0, RSTART + 9, RLENGTH - 9)
            match($0, /^[[:space:]]*/)
            indent = RLENGTH
            start = NR
            in_fn = 1
            next
        }
        in_fn {
            match($0, /^[[:space:]]*/)
            if (RLENGTH == indent && substr($0, indent + 1, 1) == "}") {
                printf "%d %s::%s\n", NR - start + 1, file, name
                in_fn = 0
            }
        }
    ' "$file"
done | sort -n > "$counts"

n="$(wc -l < "$counts")"
if [ "$n" -eq 0 ]; then
    echo "no async fn found in $dir" >&2
    exit 1
fi
median="$(awk -v n="$n" '{ a[NR] = $1 } END { if (n % 2) print a[(n + 1) / 2]; else printf "%g\n", (a[n / 2] + a[n / 2 + 1]) / 2 }' "$counts")"
max_line="$(tail -n 1 "$counts")"
over="$(awk -v limit="$limit" '$1 > limit' "$counts" | sort -rn)"
if [ "$all" -eq 1 ]; then
    sort -rn "$counts"
    echo
fi
echo "handlers: $n  median: $median  max: ${max_line%% *} (${max_line#* })"
echo "over $limit lines: $(printf '%s' "$over" | grep -c . || true)"
[ -z "$over" ] || printf '%s\n' "$over" | sed 's/^/  /'
