#!/usr/bin/env bash
# bench/search_shapes.sh: latency of catalog search query shapes against a running server.
#
# Usage:
#   bench/search_shapes.sh BASE_URL SHAPES_FILE
#
# SHAPES_FILE has one shape a line, `name<TAB>path` (path under BASE_URL, e.g.
# /api/v1/items?q=united%20states); `#` lines are comments. A path may end with
# `@PAGE` (an integer): the shape is then that page of the query, reached by
# following next_cursor (limit 20) before the measurement.
#
# For each shape: BENCH_WARMUP (5) requests discarded, then BENCH_REQUESTS (200)
# sequential requests with curl (one client, no concurrency), and prints the rows of
# the page, whether it had a next page, p50, p99 and max of curl's time_total in ms.
# The load average is printed before and after: the machine is shared, so read every
# figure next to it.
set -euo pipefail

BASE=${1:?usage: search_shapes.sh BASE_URL SHAPES_FILE}
SHAPES=${2:?usage: search_shapes.sh BASE_URL SHAPES_FILE}
WARMUP=${BENCH_WARMUP:-5}
REQUESTS=${BENCH_REQUESTS:-200}
TMP=$(mktemp -d /tmp/search-shapes.XXXXXX)
trap 'rm -rf "$TMP"' EXIT

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-24s %6s %5s %9s %9s %9s  %s\n' shape rows next p50_ms p99_ms max_ms path
while IFS=$'\t' read -r name path; do
    [[ -z "$name" || "$name" == \#* ]] && continue
    page=1
    if [[ "$path" == *@* ]]; then
        page=${path##*@}
        path=${path%@*}
    fi
    url="$BASE$path"
    for ((p = 1; p < page; p++)); do
        cursor=$(curl -sS --max-time 60 "$url" | python3 -c 'import json,sys; print(json.load(sys.stdin)["next_cursor"] or "")')
        [[ -n "$cursor" ]] || { echo "$name: ran out of pages at page $p" >&2; continue 2; }
        case "$url" in
            *cursor=*) url="${url%cursor=*}cursor=$cursor" ;;
            *) url="$url&cursor=$cursor" ;;
        esac
    done
    curl -sS --max-time 60 -o "$TMP/page.json" -w '%{http_code}' "$url" >"$TMP/code"
    [[ "$(cat "$TMP/code")" == 200 ]] || { echo "$name: HTTP $(cat "$TMP/code"): $(head -c 300 "$TMP/page.json")" >&2; exit 1; }
    read -r rows next < <(python3 -c 'import json,sys; p=json.load(open(sys.argv[1])); print(len(p["data"]), "yes" if p["next_cursor"] else "no")' "$TMP/page.json")
    for ((i = 0; i < WARMUP; i++)); do curl -s -o /dev/null --max-time 60 "$url"; done
    for ((i = 0; i < REQUESTS; i++)); do
        curl -s -o /dev/null --max-time 60 -w '%{time_total}\n' "$url"
    done >"$TMP/times"
    read -r p50 p99 max < <(sort -n "$TMP/times" | awk '{ t[NR] = $1 * 1000 } END {
        i50 = int(NR * 0.50 + 0.5); i99 = int(NR * 0.99 + 0.5); if (i99 < 1) i99 = 1; if (i50 < 1) i50 = 1;
        printf "%.1f %.1f %.1f\n", t[i50], t[i99], t[NR] }')
    shown=$path
    [[ "$page" -gt 1 ]] && shown="$path (page $page)"
    printf '%-24s %6s %5s %9s %9s %9s  %s\n' "$name" "$rows" "$next" "$p50" "$p99" "$max" "$shown"
done <"$SHAPES"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
