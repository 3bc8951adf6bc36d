#!/usr/bin/env bash
# HTTP load benchmark of `settled gateway` (not a test): builds Release, starts
# the gateway on the embedded backends on loopback, and measures with wrk
#   - single-event POST /v1/events: req/s at saturation, p50/p99, at each of
#     a list of connection counts; each server's max rate is its best count's;
#     at each count the two servers take turns for a few rounds (nginx first
#     in odd rounds, the gateway in even ones) and each counts its median
#     round, so that a drift of the machine's speed weighs on both alike,
#   - p50/p99 at half the gateway's max rate (wrk's delay(), per connection, drawn
#     around the mean so that connections do not fall into step),
#   - bulk NDJSON POST /v1/events/bulk: MB/s (curl uploads of generated files),
# beside nginx answering a static 200 to the same wrk load in the same run, and
# prints a table with the ratios. Targets (issue 4): single-event >= 0.5x
# nginx; bulk >= 100 MB/s; p99 < 20 ms at half the max rate.
#
# Usage: bench/http_load.sh [--duration S] [--rounds R (3)] [--connections "C1 C2 ..."] [--wrk-threads T]
#                           [--bulk-mb M] [--bulk-uploads P] [--fsync every-append|none]
#                           [--io-threads N] [--handler-threads N] [--build DIR (build-release)]
#                           [--settled BINARY (an already built settled: no build; for A/B runs)]
# Installs wrk and nginx-light with apt-get when missing (root or sudo).
set -euo pipefail
cd "$(dirname "$0")/.."

# A server that answers a POST once it is durable group-commits: its max
# rate needs more requests in flight than one that answers at once. Both are
# measured at each count, and each at its own best (the max rate is what a
# capacity figure means); the table shows every count.
DURATION=10 ROUNDS=3 CONNECTIONS="64 256 512" WRK_THREADS=2 BULK_MB=256 BULK_UPLOADS=2 FSYNC=every-append
IO_THREADS=2 HANDLER_THREADS=8 BUILD=build-release SETTLED=
while (($#)); do
  case "$1" in
    --duration) DURATION=$2; shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    --connections) CONNECTIONS=$2; shift 2 ;;
    --wrk-threads) WRK_THREADS=$2; shift 2 ;;
    --bulk-mb) BULK_MB=$2; shift 2 ;;
    --bulk-uploads) BULK_UPLOADS=$2; shift 2 ;;
    --fsync) FSYNC=$2; shift 2 ;;
    --io-threads) IO_THREADS=$2; shift 2 ;;
    --handler-threads) HANDLER_THREADS=$2; shift 2 ;;
    --build) BUILD=$2; shift 2 ;;
    --settled) SETTLED=$(realpath "$2"); shift 2 ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "http_load: unknown option $1" >&2; exit 2 ;;
  esac
done

# --- tools (here only, not in scripts/setup: the tests do not need them) ---
missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || missing+=(nginx-light)
command -v curl >/dev/null || missing+=(curl)
if ((${#missing[@]})); then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  echo "http_load: installing ${missing[*]}" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

# --- build (Release, unless --build names an existing tree: its type is kept) ---
if [ -n "$SETTLED" ]; then
  BUILD_TYPE="given binary $SETTLED"
else
  if [ ! -f "$BUILD/CMakeCache.txt" ]; then
    cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
  fi
  BUILD_TYPE=$(awk -F= '/^CMAKE_BUILD_TYPE:/ { print $2 }' "$BUILD/CMakeCache.txt")
  ninja -C "$BUILD" -j2 settled >&2
  SETTLED="$PWD/$BUILD/bin/settled"
fi

T=$(mktemp -d /tmp/http-load.XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$T"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null ||
              echo $((20000 + RANDOM % 20000)); }
wait_http() {  # url
  for _ in $(seq 1 200); do curl -s -o /dev/null "$1" && return 0; sleep 0.05; done
  echo "http_load: nothing answers $1" >&2; return 1
}

# --- the gateway, on the fixture's merchants ---
FIX=tests/e2e/fixtures/basic
"$SETTLED" settle --merchants $FIX/merchants.json --events $FIX/events.ndjson --through 2026-03-29 \
  --data-dir "$T/data" --quiet >/dev/null
KEY=$("$SETTLED" keys create --merchant m-eur --data-dir "$T/data" 2>/dev/null)
GW_PORT=$(free_port)
"$SETTLED" gateway --data-dir "$T/data" --listen "127.0.0.1:$GW_PORT" --fsync "$FSYNC" \
  --io-threads "$IO_THREADS" --handler-threads "$HANDLER_THREADS" --max-connections 4096 2>"$T/gateway.log" &
GW_PID=$!
PIDS+=("$GW_PID")
wait_http "http://127.0.0.1:$GW_PORT/healthz"

# --- nginx: a static 200 for any method and path, as many workers as cores ---
NG_PORT=$(free_port)
mkdir -p "$T/nginx"
cat >"$T/nginx/nginx.conf" <<EOF
worker_processes auto;
daemon off;
pid $T/nginx/nginx.pid;
error_log $T/nginx/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $T/nginx/body;
  proxy_temp_path $T/nginx/proxy;
  fastcgi_temp_path $T/nginx/fastcgi;
  uwsgi_temp_path $T/nginx/uwsgi;
  scgi_temp_path $T/nginx/scgi;
  client_body_buffer_size 64k;
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:$NG_PORT;
    location / { default_type application/json; return 200 '{"status":"ok"}'; }
  }
}
EOF
"$NGINX" -c "$T/nginx/nginx.conf" -p "$T/nginx" 2>"$T/nginx/stderr.log" &
PIDS+=($!)
wait_http "http://127.0.0.1:$NG_PORT/"

# --- wrk: one POST per request, a fresh event id each ---
write_lua() {  # file delay_ms
  cat >"$1" <<EOF
local key = os.getenv("SETTLE_KEY")
local run = os.getenv("SETTLE_RUN")
local threads = 0
function setup(thread)
  thread:set("tid", threads)
  threads = threads + 1
end
local n = 0
local prefix
local headers
function init(args)
  math.randomseed(os.time() * 16 + tid)
  prefix = run .. "-" .. tid .. "-"
  headers = {["Authorization"] = "Bearer " .. key, ["Content-Type"] = "application/json"}
end
function request()
  n = n + 1
  return wrk.format("POST", "/v1/events", headers,
    '{"event_id":"' .. prefix .. n .. '","merchant_id":"m-eur","type":"capture","amount":' .. (100 + n % 1000) ..
    ',"currency":"EUR","occurred_at":"2026-03-30T10:00:00Z","metadata":{"order":"A-' .. n .. '"}}')
end
EOF
  # A wait drawn from [d/2, 3d/2] (mean d), not d itself: with one fixed wait
  # the connections fall into step (a group answers many at once, they all
  # wait the same time and send again together), a herd no set of
  # independent clients makes.
  if [ "$2" -gt 0 ]; then
    local lo=$(($2 / 2 > 0 ? $2 / 2 : 1))
    echo "function delay() return math.random($lo, $((2 * $2 - lo))) end" >>"$1"
  fi
  cat >>"$1" <<'EOF'
function done(summary, latency, requests)
  io.write(string.format("RESULT %d %d %.6f %.3f %.3f %d\n", summary.requests,
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.duration / 1e6, latency:percentile(50) / 1000, latency:percentile(99) / 1000, summary.bytes))
end
EOF
}
write_lua "$T/post.lua" 0

# wrk_run NAME PORT CONNECTIONS LUA -> "req/s p50 p99 errors"
RUN_NO=0
wrk_run() {
  RUN_NO=$((RUN_NO + 1))
  local out
  out=$(SETTLE_KEY=$KEY SETTLE_RUN="r$RUN_NO$RANDOM" wrk -t "$WRK_THREADS" -c "$3" -d "${DURATION}s" --timeout 10s \
        -s "$4" "http://127.0.0.1:$2/v1/events" 2>&1)
  echo "$out" >"$T/wrk-$1.txt"
  awk '/^RESULT/ { printf "%.0f %.2f %.2f %d\n", $2 / $4, $5, $6, $3 }' <<<"$out"
}

read -r -a COUNTS <<<"$CONNECTIONS"
echo "http_load: warming up" >&2
DURATION_SAVED=$DURATION; DURATION=2
wrk_run warm-gw "$GW_PORT" "${COUNTS[0]}" "$T/post.lua" >/dev/null
wrk_run warm-ng "$NG_PORT" "${COUNTS[0]}" "$T/post.lua" >/dev/null
DURATION=$DURATION_SAVED

# median_run FILE: of the "req/s p50 p99 errors" lines in FILE, the one with
# the median req/s (the lower middle one of an even count).
median_run() { sort -n -k1,1 "$1" | awk '{ l[NR] = $0 } END { print l[int((NR + 1) / 2)] }'; }

echo "http_load: single-event POST at ${COUNTS[*]} connections, $ROUNDS rounds of ${DURATION}s each" >&2
GW_RPS=0 NG_RPS=0 GW_ERR=0 NG_ERR=0 SWEEP=() SWEEP_ROWS=()
for c in "${COUNTS[@]}"; do
  : >"$T/rounds-nginx-$c" && : >"$T/rounds-gateway-$c"
  for ((r = 1; r <= ROUNDS; r++)); do
    order=(nginx gateway)
    ((r % 2 == 0)) && order=(gateway nginx)
    for who in "${order[@]}"; do
      port=$NG_PORT
      [ "$who" = gateway ] && port=$GW_PORT
      wrk_run "$who-$c-$r" "$port" "$c" "$T/post.lua" >>"$T/rounds-$who-$c"
    done
  done
  read -r n_rps n_p50 n_p99 _ < <(median_run "$T/rounds-nginx-$c")
  read -r g_rps g_p50 g_p99 _ < <(median_run "$T/rounds-gateway-$c")
  n_err=$(awk '{ s += $4 } END { print s + 0 }' "$T/rounds-nginx-$c")
  g_err=$(awk '{ s += $4 } END { print s + 0 }' "$T/rounds-gateway-$c")
  echo "http_load: $c connections: gateway $(awk '{ printf "%s ", $1 }' "$T/rounds-gateway-$c")req/s," \
       "nginx $(awk '{ printf "%s ", $1 }' "$T/rounds-nginx-$c")req/s" >&2
  GW_ERR=$((GW_ERR + g_err)) NG_ERR=$((NG_ERR + n_err))
  if ((g_rps > GW_RPS)); then GW_RPS=$g_rps GW_P50=$g_p50 GW_P99=$g_p99 GW_C=$c; fi
  if ((n_rps > NG_RPS)); then NG_RPS=$n_rps NG_P50=$n_p50 NG_P99=$n_p99 NG_C=$c; fi
  SWEEP+=("| at $c connections: req/s (p50 / p99, ms) | $g_rps ($g_p50 / $g_p99) | $n_rps ($n_p50 / $n_p99) | $(awk -v a="$g_rps" -v b="$n_rps" 'BEGIN { if (b > 0) printf "%.2fx", a / b; else print "-" }') | |")
  SWEEP_ROWS+=("$c $g_rps $n_rps")
done

# Half the gateway's max rate, at its best count: each connection waits
# about delay ms (drawn around it, see write_lua) after each answer.
HALF=$((GW_RPS / 2))
DELAY_MS=$(((GW_C * 1000 + HALF / 2) / (HALF > 0 ? HALF : 1)))
((DELAY_MS < 1)) && DELAY_MS=1
write_lua "$T/post-half.lua" "$DELAY_MS"
echo "http_load: half rate (~$HALF req/s: $GW_C connections, about ${DELAY_MS} ms between requests)" >&2
read -r H_RPS H_P50 H_P99 H_ERR < <(wrk_run gateway-half "$GW_PORT" "$GW_C" "$T/post-half.lua")
read -r NH_RPS NH_P50 NH_P99 NH_ERR < <(wrk_run nginx-half "$NG_PORT" "$GW_C" "$T/post-half.lua")

# --- bulk: BULK_UPLOADS parallel uploads of BULK_MB in all, ~1 KiB lines
# (two 440-character metadata values, as the 50 MiB test) and ~190 B lines ---
gen_ndjson() {  # file prefix megabytes pad_chars
  awk -v p="$2" -v mb="$3" -v padn="$4" 'BEGIN {
    pad = ""; for (i = 0; i < padn; i++) pad = pad "x";
    meta = padn > 0 ? ",\"metadata\":{\"a\":\"" pad "\",\"b\":\"" pad "\"}" : "";
    limit = mb * 1048576; bytes = 0;
    for (n = 0; bytes < limit; n++) {
      line = "{\"event_id\":\"" p n "\",\"merchant_id\":\"m-eur\",\"type\":\"capture\",\"amount\":" (100 + n % 1000) \
             ",\"currency\":\"EUR\",\"occurred_at\":\"2026-03-30T10:00:00Z\"" meta "}";
      print line; bytes += length(line) + 1;
    }
  }' >"$1"
}
bulk_run() {  # name pad_chars -> "MB/s events/s lines accepted"
  local per=$((BULK_MB / BULK_UPLOADS)) files=() i
  for ((i = 0; i < BULK_UPLOADS; i++)); do
    gen_ndjson "$T/bulk-$1-$i.ndjson" "$1-$RANDOM-$i-" "$per" "$2"
    files+=("$T/bulk-$1-$i.ndjson")
  done
  local bytes lines t0 t1 pids=()
  bytes=$(cat "${files[@]}" | wc -c)
  lines=$(cat "${files[@]}" | wc -l)
  t0=$(date +%s.%N)
  for ((i = 0; i < BULK_UPLOADS; i++)); do
    curl -sS -o "$T/bulk-$1-$i.out" -H "Authorization: Bearer $KEY" -H 'Content-Type: application/x-ndjson' \
      -T "${files[$i]}" -X POST "http://127.0.0.1:$GW_PORT/v1/events/bulk" &
    pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p"; done
  t1=$(date +%s.%N)
  local accepted
  accepted=$(cat "$T"/bulk-"$1"-*.out | grep -o '"accepted":[0-9]*' | awk -F: '{ s += $2 } END { print s }')
  rm -f "${files[@]}"
  awk -v b="$bytes" -v l="$lines" -v a="$accepted" -v t0="$t0" -v t1="$t1" \
    'BEGIN { printf "%.1f %.0f %d %d\n", b / 1e6 / (t1 - t0), l / (t1 - t0), l, a }'
}
# Every acknowledged POST waits for at least one fdatasync of the log (group
# commit shares it among the requests in flight): its latency on the data
# directory's disk, 4 KiB appends, bounds a connection's rate.
FSYNC_MS=$(python3 - "$T/data" <<'PY'
import os, sys, time
path = os.path.join(sys.argv[1], "fsync-probe")
fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
t = time.perf_counter()
for _ in range(200):
    os.write(fd, b"x" * 4096)
    os.fdatasync(fd)
print("%.2f" % ((time.perf_counter() - t) / 200 * 1000))
os.close(fd)
os.unlink(path)
PY
)

echo "http_load: bulk NDJSON, $BULK_MB MB in $BULK_UPLOADS parallel uploads" >&2
read -r BK_MBS BK_EPS BK_LINES BK_ACC < <(bulk_run big 440)
read -r BS_MBS BS_EPS BS_LINES BS_ACC < <(bulk_run small 0)

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2fx", a / b; else print "-" }'; }
# The quotient itself, not ratio()'s two decimals: 0.496 is printed 0.50x and
# does not meet 0.5x.
quotient() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.6f", a / b; else print 0 }'; }
verdict() { awk -v v="$1" -v t="$2" -v op="$3" 'BEGIN { ok = op == ">=" ? v >= t : v < t; print ok ? "met" : "NOT met" }'; }

cat <<EOF

## HTTP load ($(date -u +%Y-%m-%dT%H:%MZ); $(nproc) cores, $(awk -F: '/model name/ { print $2; exit }' /proc/cpuinfo | sed 's/^ //');
## gateway ($BUILD_TYPE): embedded backends, --fsync $FSYNC, --io-threads $IO_THREADS --handler-threads $HANDLER_THREADS;
## wrk -t $WRK_THREADS -c {${CONNECTIONS// /,}} -d ${DURATION}s on the same machine; at each count the servers
## take turns for $ROUNDS rounds and each counts its median round)

| measure | settled gateway | nginx static 200 | ratio | target |
|---|---|---|---|---|
$(printf '%s\n' "${SWEEP[@]}")
| single-event POST, max req/s (at connections) | $GW_RPS ($GW_C) | $NG_RPS ($NG_C) | $(ratio "$GW_RPS" "$NG_RPS") | >= 0.5x ($(verdict "$(quotient "$GW_RPS" "$NG_RPS")" 0.5 ">=")) |
| single-event p50 / p99 at max, ms | $GW_P50 / $GW_P99 | $NG_P50 / $NG_P99 | | |
| at half the gateway's max rate, $GW_C connections: req/s | $H_RPS | $NH_RPS | | |
| at half the max rate: p50 / p99, ms | $H_P50 / $H_P99 | $NH_P50 / $NH_P99 | | p99 < 20 ms ($(verdict "$H_P99" 20 "<")) |
| fdatasync of a 4 KiB append on the data disk, ms | $FSYNC_MS | | | |
| bulk NDJSON ~1 KiB lines, MB/s (events/s) | $BK_MBS ($BK_EPS) | | | >= 100 MB/s ($(verdict "$BK_MBS" 100 ">=")) |
| bulk NDJSON ~190 B lines, MB/s (events/s) | $BS_MBS ($BS_EPS) | | | |

errors (non-2xx, socket): gateway $GW_ERR, half $H_ERR; nginx $NG_ERR, half $NH_ERR;
bulk accepted $BK_ACC of $BK_LINES and $BS_ACC of $BS_LINES lines.
EOF

# bench/run's table rows (bench/row.h's format).
row() { printf 'ROW\t%s\t%s\t%s\t%s\t%s\t%s\n' "$@"; }
row "HTTP single-event POST (req/s)" "$GW_RPS (at $GW_C connections)" "$NG_RPS nginx static 200 (at $NG_C)" \
  "$(ratio "$GW_RPS" "$NG_RPS")" ">= 0.5x (max rate against max rate)" "$(verdict "$(quotient "$GW_RPS" "$NG_RPS")" 0.5 ">=")"
for r in "${SWEEP_ROWS[@]}"; do
  read -r c g n <<<"$r"
  row "HTTP single-event POST at $c connections (req/s)" "$g" "$n nginx" "$(ratio "$g" "$n")" "" ""
done
row "HTTP single-event p99 at half the max rate (ms)" "$H_P99" "$NH_P99 nginx" "" "< 20 ms" "$(verdict "$H_P99" 20 "<")"
row "HTTP fdatasync of a 4 KiB append on the data disk (ms)" "$FSYNC_MS" "" "" "" ""
row "HTTP bulk NDJSON ~1 KiB lines (MB/s)" "$BK_MBS" "" "" ">= 100 MB/s" "$(verdict "$BK_MBS" 100 ">=")"
row "HTTP bulk NDJSON ~190 B lines (MB/s; events/s)" "$BS_MBS; $BS_EPS" "" "" "" ""
