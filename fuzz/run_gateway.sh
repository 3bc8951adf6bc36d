#!/usr/bin/env bash
# Builds the gateway's libFuzzer targets (the event JSON parser, the bulk CSV
# parser, the pre-signed upload URL verifier) with clang (address and
# undefined-behaviour sanitizers) and runs each for a bounded time, seeded
# with the repository's event fixtures (new corpus entries go to the work
# directory).
# Usage: fuzz/run_gateway.sh [SECONDS_PER_TARGET=8] [WORK_DIR=build/fuzz-gateway]
# Exit: 0 clean, 1 a target found a crash (its input is left in WORK_DIR),
# 77 clang or libFuzzer is not installed (ctest reports the test skipped).
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_TARGET=${1:-8}
WORK=${2:-build/fuzz-gateway}
CXX=${FUZZ_CXX:-clang++}
if ! command -v "$CXX" >/dev/null; then
  echo "fuzz: $CXX not found; install clang and libclang-rt-14-dev (scripts/setup does)"; exit 77
fi
if ! echo 'extern "C" int LLVMFuzzerTestOneInput(const char*, unsigned long){return 0;}' |
     "$CXX" -x c++ -fsanitize=fuzzer - -o /dev/null 2>/dev/null; then
  echo "fuzz: $CXX cannot link -fsanitize=fuzzer; install libclang-rt-14-dev"; exit 77
fi
mkdir -p "$WORK/inc" "$WORK/obj"
for m in common model gateway; do ln -sfn "$PWD/src/$m" "$WORK/inc/$m"; done
FLAGS=(-std=c++20 -O1 -g -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined -I"$WORK/inc")
SOURCES=(src/common/result.cc src/common/money.cc src/common/time.cc src/model/model.cc src/model/event_json.cc
         src/gateway/csv_events.cc src/gateway/signed_url.cc)
objs=()
for s in "${SOURCES[@]}"; do
  o="$WORK/obj/$(basename "${s%.cc}").o"
  if [ ! -f "$o" ] || [ "$s" -nt "$o" ]; then "$CXX" "${FLAGS[@]}" -c "$s" -o "$o"; fi
  objs+=("$o")
done
LIBS=(-lsimdjson -lxxhash -lfmt -lcrypto)
status=0
for t in event_json bulk_csv signed_url; do
  bin="$WORK/${t}_fuzz"
  if [ ! -f "$bin" ] || [ "fuzz/${t}_fuzz.cc" -nt "$bin" ] || [ -n "$(find "$WORK/obj" -newer "$bin" -name '*.o')" ]; then
    "$CXX" "${FLAGS[@]}" -fsanitize=fuzzer "fuzz/${t}_fuzz.cc" "${objs[@]}" "${LIBS[@]}" -o "$bin"
  fi
  corpus="$WORK/corpus-$t"
  mkdir -p "$corpus"
  seeds=()
  case $t in
    event_json)  # one seed per fixture line
      if [ -z "$(ls -A "$corpus")" ]; then
        i=0
        while IFS= read -r line; do
          i=$((i + 1)); printf '%s' "$line" >"$corpus/fixture-$i"; [ $i -lt 200 ] || break
        done < <(cat tests/e2e/fixtures/*/events.ndjson)
      fi ;;
    bulk_csv)
      [ -n "$(ls -A "$corpus")" ] || printf '%s\r\n' \
        'event_id,merchant_id,type,amount,currency,occurred_at,metadata' \
        'c-1,m-eur,capture,1200,EUR,2026-03-30T11:00:00Z,"{""order"":""A-1, B""}"' \
        'c-2,m-eur,refund,12.5,EUR,2026-03-30T11:00:00Z,' \
        'c-3,m-eur,adjustment,-300,EUR,2026-03-30T11:00:00+02:00,' >"$corpus/seed" ;;
    signed_url)
      [ -n "$(ls -A "$corpus")" ] ||
        printf '/v1/uploads/up_0123456789abcdef0123456789abcdef?merchant_id=m-eur&expires=1900000100&max_bytes=1048576&signature=%064d' 0 >"$corpus/seed" ;;
  esac
  echo "fuzz: $t for ${SECONDS_PER_TARGET}s"
  if ! (cd "$WORK" && ASAN_OPTIONS=detect_leaks=1 "./${t}_fuzz" -max_total_time="$SECONDS_PER_TARGET" \
          -max_len=8192 -timeout=10 -rss_limit_mb=1024 -print_final_stats=1 "corpus-$t" >"$t.log" 2>&1); then
    echo "fuzz: $t FAILED; see $WORK/$t.log"; tail -40 "$WORK/$t.log"; status=1
  else
    grep -E "stat::number_of_executed_units|Done [0-9]+ runs" "$WORK/$t.log" | tail -2 || true
  fi
done
exit $status
