#!/usr/bin/env bash
# Latency accept -> posted through the whole embedded pipeline (not a test):
# starts `settled all` (gateway, processor and worker in one process) on
# loopback, sends single-event POSTs with wrk at a given rate for a while, and
# reads the pipeline's own histogram settle_accept_to_posted_seconds from
# /metrics (time from the bus accepting an event to its journal being
# committed in the ledger): p50 and p99, interpolated within the histogram's
# buckets (0.5 ms .. 30 s; 25/50/100 ms around the target). Then the RSS the
# process spends per idle keep-alive connection (conn_mem_bench).
# Prints bench/run's ROW lines.
#
# Usage: bench/pipeline_load.sh --rate R [--duration S] [--connections C] [--build DIR]
# Needs wrk and curl (bench/http_load.sh installs them).
set -euo pipefail
cd "$(dirname "$0")/.."

RATE=500 DURATION=10 CONNECTIONS=32 BUILD=build-release
while (($#)); do
  case "$1" in
    --rate) RATE=$2; shift 2 ;;
    --duration) DURATION=$2; shift 2 ;;
    --connections) CONNECTIONS=$2; shift 2 ;;
    --build) BUILD=$2; shift 2 ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) echo "pipeline_load: unknown option $1" >&2; exit 2 ;;
  esac
done
SETTLED="$PWD/$BUILD/bin/settled"
CONN_MEM="$PWD/$BUILD/bin/conn_mem_bench"
for f in "$SETTLED" "$CONN_MEM"; do
  [ -x "$f" ] || { echo "pipeline_load: $f is missing (ninja -C $BUILD settled conn_mem_bench)" >&2; exit 2; }
done

T=$(mktemp -d /tmp/pipeline-load.XXXXXX)
PID=""
cleanup() {
  [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
  rm -rf "$T"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null ||
              echo $((20000 + RANDOM % 20000)); }

FIX=tests/e2e/fixtures/basic
"$SETTLED" settle --merchants $FIX/merchants.json --events $FIX/events.ndjson --through 2026-03-29 \
  --data-dir "$T/data" --quiet >/dev/null
KEY=$("$SETTLED" keys create --merchant m-eur --data-dir "$T/data" 2>/dev/null)
PORT=$(free_port)
"$SETTLED" all --data-dir "$T/data" --listen "127.0.0.1:$PORT" --max-connections 4096 2>"$T/all.log" &
PID=$!
for _ in $(seq 1 200); do curl -s -o /dev/null "http://127.0.0.1:$PORT/healthz" && break; sleep 0.05; done

# wrk's delay() follows each answer: C connections each waiting C/R s between
# requests ask for R req/s (less when answers are slow).
DELAY_MS=$(((CONNECTIONS * 1000 + RATE / 2) / (RATE > 0 ? RATE : 1)))
((DELAY_MS < 1)) && DELAY_MS=1
cat >"$T/post.lua" <<LUA
local threads = 0
function setup(thread) thread:set("tid", threads); threads = threads + 1 end
local n = 0
local prefix, headers
function init(args)
  prefix = "lat-$RANDOM-" .. tid .. "-"
  headers = {["Authorization"] = "Bearer $KEY", ["Content-Type"] = "application/json"}
end
function request()
  n = n + 1
  return wrk.format("POST", "/v1/events", headers,
    '{"event_id":"' .. prefix .. n .. '","merchant_id":"m-eur","type":"capture","amount":' .. (100 + n % 1000) ..
    ',"currency":"EUR","occurred_at":"2026-03-30T10:00:00Z"}')
end
function delay() return $DELAY_MS end
function done(summary, latency, requests)
  io.write(string.format("RESULT %d %d %.6f\n", summary.requests,
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.duration / 1e6))
end
LUA
echo "pipeline_load: asking ~$RATE req/s ($CONNECTIONS connections, ${DELAY_MS} ms apart) for ${DURATION}s" >&2
OUT=$(wrk -t 2 -c "$CONNECTIONS" -d "${DURATION}s" --timeout 10s -s "$T/post.lua" "http://127.0.0.1:$PORT/v1/events")
read -r REQS ERRS SECS < <(awk '/^RESULT/ { print $2, $3, $4 }' <<<"$OUT")
sleep 2  # let the processor post the tail
curl -s "http://127.0.0.1:$PORT/metrics" >"$T/metrics.txt"
# Quantiles from the cumulative buckets, linear within a bucket.
read -r COUNT P50 P99 < <(awk '
  /^settle_accept_to_posted_seconds_bucket/ {
    match($0, /le="[^"]*"/); le = substr($0, RSTART + 4, RLENGTH - 5);
    n++; bound[n] = (le == "+Inf") ? 1e9 : le + 0; cum[n] = $NF + 0 }
  /^settle_accept_to_posted_seconds_count/ { total = $NF + 0 }
  function q(p,   target, i, lo, prev) {
    target = p * total; prev = 0; lo = 0;
    for (i = 1; i <= n; i++) {
      if (cum[i] >= target) {
        if (bound[i] >= 1e9) return lo * 1000;
        return (lo + (bound[i] - lo) * (cum[i] > prev ? (target - prev) / (cum[i] - prev) : 1)) * 1000;
      }
      prev = cum[i]; lo = bound[i] }
    return lo * 1000 }
  END { printf "%d %.1f %.1f\n", total, q(0.5), q(0.99) }' "$T/metrics.txt")
RPS=$(awk -v r="$REQS" -v s="$SECS" 'BEGIN { printf "%.0f", r / s }')
echo "pipeline_load: $REQS requests ($ERRS errors) in ${SECS}s = $RPS req/s; $COUNT events posted; accept->posted p50 $P50 ms, p99 $P99 ms"
VERDICT=$(awk -v p="$P99" 'BEGIN { print (p <= 50) ? "met" : "NOT met" }')
printf 'ROW\tlatency accept -> posted at %s req/s (asked %s), p50 / p99 ms\t%s / %s\t\t\tp99 <= 50 ms\t%s\n' \
  "$RPS" "$RATE" "$P50" "$P99" "$VERDICT"
"$CONN_MEM" 127.0.0.1 "$PORT" "$PID" 1000
