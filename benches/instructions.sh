#!/usr/bin/env bash
# Instructions per request added by each layer, counted by callgrind (repeatable, unlike time).
# Usage: benches/instructions.sh [--connection]   (needs valgrind; prints Markdown tables)
#   --connection  adds the count over a real connection: the client process of the `healthy`
#                 bench against its hyper server, per client and workload (about 5 minutes more)
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { echo "valgrind is needed (apt-get install valgrind)"; exit 1; }

build() {
    cargo bench --bench instructions --no-run --message-format=json "$@" 2>/dev/null \
        | sed -n 's/.*"executable":"\([^"]*instructions[^"]*\)".*/\1/p' | tail -1
}
binary=$(build --features resume)
requests=100000
out=$(mktemp -d)

# Counts only what happens inside `send` (poll_ready, call, poll, drop of the future and the
# response): building each request is left out.
count() {
    valgrind --tool=callgrind --callgrind-out-file="$out/$1" --toggle-collect='*instant_service*send*' \
        "${2:-$binary}" "$1" >/dev/null 2>&1
    callgrind_annotate "$out/$1" 2>/dev/null | awk '/PROGRAM TOTALS/ { gsub(",", "", $1); print $1; exit }'
}

per_request() { echo $(( $1 / requests )); }

echo "| request | bare | tower::retry (cloning) | ResetRetry | Backoff | FreshConnection (detour) | ResetRetry + Backoff | all three |"
echo "|---|---|---|---|---|---|---|---|"
post_bare=$(per_request "$(count post-bare)")
post_retry=$(per_request "$(count post-reset-retry)")
post_backoff=$(per_request "$(count post-backoff)")
post_stack=$(per_request "$(count post-stack)")
post_fresh=$(per_request "$(count post-fresh-connection)")
post_full=$(per_request "$(count post-full-stack)")
echo "| never retried (POST, 8 headers) | $post_bare | — | $post_retry (+$((post_retry - post_bare))) | $post_backoff (+$((post_backoff - post_bare))) | $post_fresh (+$((post_fresh - post_bare))) | $post_stack (+$((post_stack - post_bare))) | $post_full (+$((post_full - post_bare))) |"
get_bare=$(per_request "$(count get-bare)")
get_tower=$(per_request "$(count get-tower-retry)")
get_retry=$(per_request "$(count get-reset-retry)")
get_stack=$(per_request "$(count get-stack)")
get_full=$(per_request "$(count get-full-stack)")
echo "| retryable GET, 8 headers | $get_bare | $get_tower (+$((get_tower - get_bare))) | $get_retry (+$((get_retry - get_bare))) | — | — | $get_stack (+$((get_stack - get_bare))) | $get_full (+$((get_full - get_bare))) |"

# A body read frame by frame: what ResumeLayer adds to a GET whose body never fails. The call
# copies the request once; each frame is counted on its way through. Two body sizes tell the
# two apart.
body_requests=10000
per_body() { echo $(( $(count "$1") / body_requests )); }
bare_1=$(per_body body-bare-1)
resume_1=$(per_body body-resume-1)
bare_64=$(per_body body-bare-64)
resume_64=$(per_body body-resume-64)
echo
echo "| GET, 8 headers, body read to its end | bare | ResumeLayer |"
echo "|---|---|---|"
echo "| 1 frame | $bare_1 | $resume_1 (+$((resume_1 - bare_1))) |"
echo "| 64 frames | $bare_64 | $resume_64 (+$((resume_64 - bare_64))) |"
echo "| per frame added | | $(( ((resume_64 - bare_64) - (resume_1 - bare_1)) / 63 )) |"
# The diagnosis: the generic collector layer, and the pooled strategy (feature `hyper-util`,
# a second build) alone and with a collector, over the same instant service. The collector's
# one-time allocations shift the heap so that glibc consolidates its free lists on every
# request's free (~700 instructions that are no work of the layer's: the same shift before a
# bare run costs as much), so this table runs with a tcache large enough that no free
# consolidates, bare included.
pooled=$(build --features resume,hyper-util)
export GLIBC_TUNABLES=glibc.malloc.tcache_count=1000
tuned_bare=$(per_request "$(count get-bare)")
get_diagnose=$(per_request "$(count get-diagnose)")
get_pooled=$(per_request "$(count get-pooled "$pooled")")
get_pooled_diagnose=$(per_request "$(count get-pooled-diagnose "$pooled")")
echo
echo "| request (tcache_count=1000) | bare | DiagnoseLayer | FreshConnection (pooled, no connection info) | pooled + diagnose |"
echo "|---|---|---|---|---|"
echo "| retryable GET, 8 headers | $tuned_bare | $get_diagnose (+$((get_diagnose - tuned_bare))) | $get_pooled (+$((get_pooled - tuned_bare))) | $get_pooled_diagnose (+$((get_pooled_diagnose - tuned_bare))) |"

if [ "${1:-}" = "--connection" ]; then
    # The client process of benches/healthy (the server runs in a process of its own, not
    # counted), two runs per figure: the difference between 25 and 5 rounds of 100 requests,
    # over the 2,000 requests between them, leaves out start-up and warm-up.
    healthy=$(cargo bench --bench healthy --no-run --message-format=json --features hyper-util 2>/dev/null \
        | sed -n 's/.*"executable":"\([^"]*healthy[^"]*\)".*/\1/p' | tail -1)
    client_count() {
        valgrind --tool=callgrind --callgrind-out-file=/dev/null "$healthy" --profile "$1" \
            --workloads "$2" --rounds "$3" --hosts 1 2>&1 | sed -n 's/.*Collected : //p'
    }
    per_connection_request() {
        echo $(( ($(client_count "$1" "$2" 25) - $(client_count "$1" "$2" 5)) / 2000 ))
    }
    clients="bare tower-retry reset-retry backoff reset-retry-backoff fresh-connection stack resume-stack"
    echo
    echo "| over a real connection (client process) | bare hyper-util | tower::retry | ResetRetry | Backoff | ResetRetry + Backoff | FreshConnection | the three | Resume + the three |"
    echo "|---|---|---|---|---|---|---|---|---|"
    for workload in "HTTP/1.1 GET, sequential" "HTTP/1.1 POST, sequential" "HTTP/1.1 GET, 8 in flight" \
        "HTTP/2 GET, sequential" "HTTP/2 GET, 8 in flight"; do
        bare=""
        row="| $workload |"
        for client in $clients; do
            n=$(per_connection_request "$client" "$workload")
            if [ -z "$bare" ]; then bare=$n; row="$row $n |"; else row="$row $n (+$((n - bare))) |"; fi
        done
        echo "$row"
    done
fi
rm -rf "$out"
