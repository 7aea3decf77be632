#!/usr/bin/env bash
# Sets up (packages, build) and runs the whole test suite. The tests start the service
# simulators they need (tests/sim/) on loopback ports by themselves.
#   scripts/test.sh            normal build in ./build
#   scripts/test.sh --asan     AddressSanitizer + UndefinedBehaviorSanitizer build in ./build-asan
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--asan" ]; then
  scripts/setup.sh build-asan -DCMAKE_BUILD_TYPE=Debug -DCRMBRIDGE_SANITIZE=ON
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
  export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  ctest --test-dir build-asan --output-on-failure -j2
else
  scripts/setup.sh build
  ctest --test-dir build --output-on-failure -j2
fi
