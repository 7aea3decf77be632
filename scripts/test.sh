#!/usr/bin/env bash
# Sets up (packages, build) and runs the whole test suite. The tests start the service
# simulators they need (tests/sim/) on loopback ports by themselves.
#   scripts/test.sh            normal build in ./build
#   scripts/test.sh --asan     AddressSanitizer + UndefinedBehaviorSanitizer build in ./build-asan
#                              (all but the crash/fault harnesses, which the normal pass runs)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--asan" ]; then
  scripts/setup.sh build-asan -DCMAKE_BUILD_TYPE=Debug -DCRMBRIDGE_SANITIZE=ON
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
  export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  # The crash and fault harnesses drive the binary hundreds of times to prove convergence; they
  # run in the normal pass. Under the sanitizers every other test runs.
  ctest --test-dir build-asan --output-on-failure -j2 -LE harness
else
  scripts/setup.sh build
  ctest --test-dir build --output-on-failure -j2
  # the crash and fault harnesses' figures (kills, restarts, duplicates, lost edits, ...)
  grep -h "^figures:" build/Testing/Temporary/LastTest.log || true
fi
