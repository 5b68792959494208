#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, AddressSanitizer + UBSan) into $1 and
# runs each for $2 seconds (default 20) from its seed corpus in
# tests/fuzz/corpus/<target>/ (new inputs go to a scratch copy). Fails on any
# crash, hang (a single input over 10 s), leak of the sanitizers' kind or
# sanitizer report; prints each target's execution count.
#   tests/fuzz/run.sh build-fuzz 20          (CI: scripts/test.sh)
#   tests/fuzz/run.sh build-fuzz 600         (by hand: longer runs, counts in docs/reliability.md)
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
dir=${1:-$here/build-fuzz}
secs=${2:-20}
CC=clang cmake -S "$here" -B "$dir" -DCMAKE_BUILD_TYPE=Debug -DENTPROG_FUZZ=ON -DENTPROG_SANITIZE=ON -DENTPROG_CUDA=OFF >/dev/null
cmake --build "$dir" -j"$(nproc)" --target fuzz_deck fuzz_dataset fuzz_ckpt >/dev/null
export ASAN_OPTIONS=detect_leaks=0:abort_on_error=0 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 HDF5_USE_FILE_LOCKING=FALSE OMP_NUM_THREADS=1
status=0
printf "%-14s %10s %8s %s\n" target executions seconds result
for t in deck dataset ckpt; do
  work=$(mktemp -d /tmp/fuzz_$t.XXXXXX)
  cp -r "$here/tests/fuzz/corpus/$t/." "$work/" 2>/dev/null || true
  log=$dir/fuzz_$t.log
  rc=0
  (cd "$dir" && ./fuzz_$t -max_total_time="$secs" -timeout=10 -rss_limit_mb=4096 -print_final_stats=1 \
      -artifact_prefix="$dir/crash_$t-" "$work" >"$log" 2>&1) || rc=$?
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo 0)
  result=ok
  if [ $rc -ne 0 ] || grep -q "ERROR: AddressSanitizer\|runtime error:\|ERROR: libFuzzer" "$log"; then
    result="FAILED (rc $rc, see $log and $dir/crash_$t-*)"
    status=1
    grep -m5 "ERROR\|runtime error\|SUMMARY" "$log" || true
  fi
  printf "%-14s %10s %8s %s\n" "fuzz_$t" "$runs" "$secs" "$result"
  rm -rf "$work"
done
exit $status
