#!/usr/bin/env bash
# Builds the statement parsers' libFuzzer targets (camt.053, MT940, BAI2,
# acquirer CSV) with clang (address and undefined-behaviour sanitizers) and
# runs each for a bounded time, seeded
# with the public samples in ../shared/statements (read in place, never
# copied into the repository; new corpus entries go to the work directory).
# Usage: fuzz/run.sh [SECONDS_PER_TARGET=20] [WORK_DIR=build/fuzz]
# Exit: 0 clean, 1 a target found a crash (its input is left in WORK_DIR),
# 77 clang or libFuzzer is not installed (ctest reports the test skipped).
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_TARGET=${1:-20}
WORK=${2:-build/fuzz}
CXX=${FUZZ_CXX:-clang++}
if ! command -v "$CXX" >/dev/null; then
  echo "fuzz: $CXX not found; install clang and libclang-rt-14-dev (scripts/setup does)"; exit 77
fi
if ! echo 'extern "C" int LLVMFuzzerTestOneInput(const char*, unsigned long){return 0;}' |
     "$CXX" -x c++ -fsanitize=fuzzer - -o /dev/null 2>/dev/null; then
  echo "fuzz: $CXX cannot link -fsanitize=fuzzer; install libclang-rt-14-dev"; exit 77
fi
mkdir -p "$WORK/inc" "$WORK/obj"
for m in common reconcile model ledger; do ln -sfn "$PWD/src/$m" "$WORK/inc/$m"; done
FLAGS=(-std=c++20 -O1 -g -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined
       -I"$WORK/inc" $(pkg-config --cflags libxml-2.0))
SOURCES=(src/common/result.cc src/common/money.cc src/common/time.cc src/reconcile/statement.cc
         src/reconcile/camt053_parser.cc src/reconcile/mt940_parser.cc src/reconcile/bai2_parser.cc
         src/reconcile/acquirer_csv_parser.cc)
objs=()
for s in "${SOURCES[@]}"; do
  o="$WORK/obj/$(basename "${s%.cc}").o"
  if [ ! -f "$o" ] || [ "$s" -nt "$o" ]; then "$CXX" "${FLAGS[@]}" -c "$s" -o "$o"; fi
  objs+=("$o")
done
LIBS=($(pkg-config --libs libxml-2.0) -lfmt)
SHARED="$(cd .. && pwd)/shared/statements"
status=0
for t in camt053 mt940 bai2 acquirer_csv; do
  bin="$WORK/${t}_fuzz"
  "$CXX" "${FLAGS[@]}" -fsanitize=fuzzer "fuzz/${t}_fuzz.cc" "${objs[@]}" "${LIBS[@]}" -o "$bin"
  corpus="$WORK/corpus-$t"
  mkdir -p "$corpus"
  seeds=()
  case $t in
    camt053) seeds=("$SHARED/camt053") ;;
    mt940) seeds=("$SHARED/mt940") ;;
    bai2) seeds=("$SHARED/bai2") ;;
    acquirer_csv) seeds=("$SHARED/acquirer") ;;
  esac
  [ -d "${seeds[0]}" ] || seeds=()
  echo "fuzz: $t for ${SECONDS_PER_TARGET}s"
  if ! (cd "$WORK" && ASAN_OPTIONS=detect_leaks=1 "./${t}_fuzz" -max_total_time="$SECONDS_PER_TARGET" \
          -max_len=65536 -timeout=10 -rss_limit_mb=1024 -print_final_stats=1 "corpus-$t" "${seeds[@]}" \
          >"$t.log" 2>&1); then
    echo "fuzz: $t FAILED; see $WORK/$t.log"; tail -40 "$WORK/$t.log"; status=1
  else
    grep -E "stat::number_of_executed_units|Done [0-9]+ runs" "$WORK/$t.log" | tail -2 || true
  fi
done
exit $status
