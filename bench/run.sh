#!/bin/sh
# Builds crmbridge and the benchmarks (Release), runs every benchmark against the simulators,
# prints the table and writes bench/results.json. docs/performance.md explains the figures.
#
#   bench/run.sh [--quick] [--markdown]
#     --quick     1,000 linked records instead of 10,000 (calls per change)
#     --markdown  print the table as markdown (for docs/performance.md)
#   CB_BENCH_BUILD  build directory (default: build-bench in the source tree)
#
# Exit: 0 every target met, 1 a target missed, 2 usage, 3 a benchmark could not run.
set -u

root=$(cd "$(dirname "$0")/.." && pwd)
build=${CB_BENCH_BUILD:-$root/build-bench}
parts=$build/bench-parts
quick=
markdown=
for a in "$@"; do
    case $a in
    --quick) quick=--quick ;;
    --markdown) markdown=--markdown ;;
    *) echo "usage: bench/run.sh [--quick] [--markdown]" >&2; exit 2 ;;
    esac
done

step() { printf '%s\n' "bench: $*" >&2; }

step "building (Release) in $build"
mkdir -p "$build" || exit 3
log=$build/bench-build.log
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DCRMBRIDGE_TESTS=ON \
    -DCRMBRIDGE_BENCH=ON >"$log" 2>&1 &&
    cmake --build "$build" --target crmbridge bench_sync bench_mem bench_cpu bench_migrate -j2 >>"$log" 2>&1 ||
    { cat "$log" >&2; exit 3; }
rm -rf "$parts" && mkdir -p "$parts"
bin=$build/bench
failed=0

step "calls per change and latency (about 3 minutes; 30 s with --quick)"
"$bin/bench_sync" $quick --out "$parts/sync.json" >"$parts/sync.log" 2>&1 || failed=1

step "webhook latency: Zoho <-> Jira (500 links), Zoho <-> Trello (260); 100 edits each (2 min)"
"$bin/bench_sync" --hooks --records 500 --edits 100 --out "$parts/hooks.json" \
    >"$parts/hooks.log" 2>&1 || failed=1
"$bin/bench_sync" --hooks --tracker trello --records 260 --edits 100 \
    --out "$parts/hooks-trello.json" >"$parts/hooks-trello.log" 2>&1 || failed=1

step "migration: 10,000 cases into Jira, 100 ms latency, 60 connections (1,000 with --quick)"
records=10000
[ -n "$quick" ] && records=1000
"$bin/bench_migrate" --records $records --latency-ms 100 --workers 60 \
    --out "$parts/migrate.json" >"$parts/migrate.log" 2>&1 || failed=1

step "memory and disk with 100,000 links"
"$bin/bench_mem" --links 100000 --out "$parts/mem.json" >"$parts/mem.log" 2>&1 || failed=1

step "cpu per record"
if "$bin/bench_cpu" --prepare "$parts/cpu-prep.json" >"$parts/cpu.log" 2>&1; then
    if command -v valgrind >/dev/null 2>&1; then
        for mode in baseline changed unchanged; do # 200 loops = CALLGRIND_ITERATIONS in report.py
            valgrind --tool=callgrind --collect-atstart=no --toggle-collect=bench_loop \
                --callgrind-out-file="$parts/callgrind.$mode.out" \
                "$bin/bench_cpu" --loop $mode "$parts/cpu-prep.json" 200 >>"$parts/cpu.log" 2>&1 ||
                failed=1
        done
    else
        step "valgrind not found: instruction counts skipped (CPU time only)"
    fi
    "$bin/bench_cpu" --time "$parts/cpu-prep.json" 2000 >"$parts/cpu-time.json" \
        2>>"$parts/cpu.log" || failed=1
else
    failed=1
fi

python3 "$root/bench/report.py" "$parts" "$root/bench/results.json" $markdown
rc=$?
step "results in $root/bench/results.json; logs in $parts"
[ $failed -eq 0 ] || { step "a benchmark failed to run: see the logs"; exit 3; }
exit $rc
