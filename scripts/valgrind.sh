#!/usr/bin/env bash
# Runs the test suite once under valgrind (memcheck): every in-process test executable directly,
# and every end-to-end test with the crmbridge binary itself under valgrind (a wrapper named by
# CB_CRMBRIDGE_BIN). Fails on any memory error or definite/indirect leak.
#   scripts/valgrind.sh [BUILD_DIR (default build)]
# Left out: test_cli_daemon (it asserts sub-second webhook latency, which valgrind's slowdown
# breaks; ASan runs it) and the crash/fault harnesses (hundreds of runs; the normal pass runs them).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
command -v valgrind >/dev/null || { sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo";
  $sudo apt-get install -y -qq valgrind >/dev/null; }
[ -x "$build/cli/crmbridge" ] || scripts/setup.sh "$build"
logs=$(mktemp -d)
vg=(valgrind -q --leak-check=full --errors-for-leak-kinds=definite,indirect
    --show-leak-kinds=definite,indirect)
cat >"$logs/crmbridge" <<WRAP
#!/bin/sh
exec ${vg[*]} --log-file=$logs/bin-%p.log $PWD/$build/cli/crmbridge "\$@"
WRAP
chmod +x "$logs/crmbridge"
failed=0
for t in "$build"/tests/test_*; do
  name=$(basename "$t")
  [ -x "$t" ] && [ -f "$t" ] || continue
  case $name in
    test_cli_daemon) continue ;;
    test_cli_*) CB_CRMBRIDGE_BIN="$logs/crmbridge" CB_SOURCE_DIR="$PWD" "$t" >"$logs/$name.out" 2>&1 ;;
    *) CB_SOURCE_DIR="$PWD" "${vg[@]}" --error-exitcode=99 "$t" >"$logs/$name.out" 2>&1 ;;
  esac && echo "ok      $name" || { echo "FAILED  $name (see $logs/$name.out)"; failed=1; }
done
runs=$(ls "$logs"/bin-*.log 2>/dev/null | wc -l)
bad=$(cat "$logs"/bin-*.log 2>/dev/null | grep -c '^==' || true)
echo "crmbridge ran $runs times under valgrind; $bad report lines"
[ "$bad" -eq 0 ] || { cat "$logs"/bin-*.log | head -60; failed=1; }
exit $failed
