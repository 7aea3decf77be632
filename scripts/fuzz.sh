#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (-DCRMBRIDGE_FUZZ=ON) and runs each for a short while
# over its committed corpus (tests/fuzz/corpus/<target>/); new inputs go to a scratch copy, so
# the committed corpus only changes by hand. Exits non-zero on the first finding.
#   scripts/fuzz.sh [SECONDS_PER_TARGET (default 20)] [BUILD_DIR (default build-fuzz)]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-20}
build=${2:-build-fuzz}
targets=(richtext mapping config hooks zoho jira fxiaoke trello)

# libFuzzer's runtime ships in libclang-rt-14-dev on Debian 12.
if ! ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a >/dev/null 2>&1 ||
   ! command -v clang >/dev/null; then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq clang libclang-rt-14-dev >/dev/null
fi

cmake -S . -B "$build" -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Debug -DCRMBRIDGE_FUZZ=ON \
      -DCRMBRIDGE_TESTS=OFF -DCRMBRIDGE_BENCH=OFF >/dev/null
cmake --build "$build" -j"$(nproc)" --target "${targets[@]/#/fuzz_}" >"$build/fuzz-build.log" 2>&1 ||
  { cat "$build/fuzz-build.log"; exit 1; }

# Rich text gets short inputs: a short input explores as much of the converters' grammar, and
# runs faster (their linear time on long hostile text is checked in docs/reliability.md, G5).
max_len() { case $1 in richtext) echo 4096 ;; *) echo 65536 ;; esac; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
total=0
for t in "${targets[@]}"; do
  mkdir -p "$work/$t"
  cp tests/fuzz/corpus/$t/* "$work/$t/"
  log="$work/$t.log"
  if ! ASAN_OPTIONS=detect_leaks=1 LSAN_OPTIONS=suppressions=tests/fuzz/lsan.supp "$build/tests/fuzz/fuzz_$t" -max_total_time="$secs" \
       -timeout=10 -rss_limit_mb=2048 -max_len="$(max_len "$t")" -artifact_prefix="$work/" "$work/$t" \
       >"$log" 2>&1; then
    tail -60 "$log"
    echo "fuzz_$t: FINDING (reproducer in $work kept as $build/fuzz-$t-crash)" >&2
    cp "$work"/crash-* "$work"/leak-* "$work"/timeout-* "$build/" 2>/dev/null || true
    exit 1
  fi
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || true)
  [ -z "$execs" ] && execs=$(grep -Eo '^#[0-9]+' "$log" | tail -1 | tr -d '#')
  total=$((total + ${execs:-0}))
  echo "fuzz_$t: ${execs:-?} runs in ${secs}s, no finding"
done
echo "fuzz: $total runs in all, no finding"
