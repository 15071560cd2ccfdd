#!/bin/sh
# The fuzzing run (issue 12): builds the fuzz targets with clang-14's libFuzzer, AddressSanitizer
# and UndefinedBehaviorSanitizer in build/fuzz, then runs each from its seed corpus.
#
#   tests/fuzz/run.sh               short: 60 s per target
#   tests/fuzz/run.sh --extended    >= 10^7 executions for gs1, >= 10^6 for config, audit and
#                                   queue, and 4 hours of handlers (FUZZ_HANDLERS_SECONDS)
#   tests/fuzz/run.sh [--extended] gs1 audit    only these targets
#
# FUZZ_SECONDS overrides the short run's time per target, FUZZ_JOBS the build's -j (default 2).
# New corpus entries go to build/fuzz/corpus/<target> (the seeds in tests/fuzz/corpus are only
# read); a crash's input is saved as tests/fuzz/crashes/<target>-crash-<sha1> (gitignored). Prints
# the executions and crashes of each target; exits 1 if any target crashed.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
source_dir=$(cd "$here/../.." && pwd)
build_dir="$source_dir/build/fuzz"
extended=0
targets=""
for arg in "$@"; do
  case "$arg" in
    --extended) extended=1 ;;
    gs1 | config | audit | handlers | queue) targets="$targets $arg" ;;
    *) echo "usage: $0 [--extended] [gs1] [config] [audit] [handlers] [queue]" >&2; exit 2 ;;
  esac
done
[ -n "$targets" ] || targets="gs1 config audit handlers queue"

flags="-g -O1 -fno-omit-frame-pointer -fsanitize=fuzzer-no-link,address,undefined"
# The project's warning list names GCC-only options.
flags="$flags -fno-sanitize=vptr -fno-sanitize-recover=undefined -Wno-unknown-warning-option"
cmake -S "$source_dir" -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Debug \
  -DCMAKE_C_COMPILER=clang-14 -DCMAKE_CXX_COMPILER=clang++-14 \
  -DCMAKE_C_FLAGS="$flags" -DCMAKE_CXX_FLAGS="$flags" \
  -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address,undefined" \
  -DSTERITRACK_LIBFUZZER=ON -DSTERITRACK_BUILD_BENCH=OFF >"$build_dir.configure.log" 2>&1 ||
  { cat "$build_dir.configure.log" >&2; exit 1; }
build_targets=""
for t in $targets; do build_targets="$build_targets fuzz_$t"; done
# shellcheck disable=SC2086
cmake --build "$build_dir" -j "${FUZZ_JOBS:-2}" --target $build_targets

mkdir -p "$here/crashes"
# fuzz_config, fuzz_audit and fuzz_queue write a file per input: on tmpfs when there is one.
if [ -z "${TMPDIR:-}" ] && [ -d /dev/shm ] && [ -w /dev/shm ]; then export TMPDIR=/dev/shm; fi
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
failed=0
summary=""
for t in $targets; do
  corpus="$build_dir/corpus/$t"
  mkdir -p "$corpus"
  if [ "$extended" = 1 ]; then
    # handlers: a real server round trip per input (~170/s under ASan on two busy cores, so
    # 10^6 per handler would take days): four hours, FUZZ_HANDLERS_SECONDS to change.
    case "$t" in gs1) limit="-runs=10000000" ;;
      handlers) limit="-max_total_time=${FUZZ_HANDLERS_SECONDS:-14400}" ;;
      *) limit="-runs=1000000" ;; esac
  else
    limit="-max_total_time=${FUZZ_SECONDS:-60}"
  fi
  log="$build_dir/$t.log"
  echo "== fuzz_$t $limit (log: $log)"
  status=0
  "$build_dir/tests/fuzz/fuzz_$t" "$limit" -print_final_stats=1 -max_len=4096 -timeout=30 \
    -artifact_prefix="$here/crashes/$t-" "$corpus" "$here/corpus/$t" >"$log" 2>&1 || status=$?
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  crashes=0
  if [ "$status" != 0 ]; then
    crashes=1
    failed=1
    grep -E '^(==[0-9]+==ERROR|.*oracle failed|.*runtime error|SUMMARY|artifact_prefix|Test unit written)' \
      "$log" | head -n 20 >&2 || true
  fi
  summary="$summary
fuzz_$t: ${runs:-?} executions, $crashes crashes (exit $status)"
done
echo "$summary"
exit "$failed"
