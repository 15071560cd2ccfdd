#!/bin/sh
# The fuzzing run (issue 12): builds the fuzz targets with clang-14's libFuzzer, AddressSanitizer
# and UndefinedBehaviorSanitizer in build/fuzz, then runs each from its seed corpus.
#
#   tests/fuzz/run.sh               short: 60 s per target
#   tests/fuzz/run.sh --extended    >= 10^7 executions for gs1, >= 10^6 for config, audit and
#                                   queue, an hour of handlers (FUZZ_HANDLERS_SECONDS), and
#                                   handlers-each
#   tests/fuzz/run.sh [--extended] gs1 audit    only these targets
#
# handlers-each runs every unary handler on its own for 10^6 executions (FUZZ_HANDLERS_RUNS),
# FUZZ_PARALLEL at a time (tests/fuzz/handlers_each.sh), with or without --extended: it is never
# part of the short run's default. A server round trip per input is ~400/s under ASan, so it runs
# in a second build, build/fuzz-each, with libFuzzer and UBSan but without ASan (~3,500/s per
# handler, two at a time): about two hours on two cores. Run again on the same binary, it goes
# on with the handlers not yet done.
#
# FUZZ_SECONDS overrides the short run's time per target, FUZZ_JOBS the build's -j (default 2).
# New corpus entries go to build/fuzz/corpus/<target> (the seeds in tests/fuzz/corpus are only
# read); a crash's input is saved as tests/fuzz/crashes/<target>-crash-<sha1> (gitignored). Prints
# the executions and crashes of each target; exits 1 if any target crashed.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
source_dir=$(cd "$here/../.." && pwd)
build_dir="$source_dir/build/fuzz"
# fuzz_handlers' own switches, set per run by handlers_each.sh only: the mixed run takes all.
unset FUZZ_HANDLERS_LIST FUZZ_HANDLERS_METHOD
extended=0
targets=""
for arg in "$@"; do
  case "$arg" in
    --extended) extended=1 ;;
    gs1 | config | audit | handlers | queue | handlers-each) targets="$targets $arg" ;;
    *)
      echo "usage: $0 [--extended] [gs1] [config] [audit] [handlers] [queue] [handlers-each]" >&2
      exit 2
      ;;
  esac
done
if [ -z "$targets" ]; then
  targets="gs1 config audit handlers queue"
  [ "$extended" = 0 ] || targets="$targets handlers-each"
fi

# configure DIR FLAGS LINK_FLAGS TARGETS: a clang build of the fuzz targets in DIR.
configure() {
  dir=$1
  # The project's warning list names GCC-only options.
  flags="$2 -fno-sanitize=vptr -fno-sanitize-recover=undefined -Wno-unknown-warning-option"
  cmake -S "$source_dir" -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=Debug \
    -DCMAKE_C_COMPILER=clang-14 -DCMAKE_CXX_COMPILER=clang++-14 \
    -DCMAKE_C_FLAGS="$flags" -DCMAKE_CXX_FLAGS="$flags" -DCMAKE_EXE_LINKER_FLAGS="$3" \
    -DSTERITRACK_LIBFUZZER=ON -DSTERITRACK_BUILD_BENCH=OFF >"$dir.configure.log" 2>&1 ||
    { cat "$dir.configure.log" >&2; exit 1; }
  # shellcheck disable=SC2086
  cmake --build "$dir" -j "${FUZZ_JOBS:-2}" --target $4
}
build_targets=""
for t in $targets; do [ "$t" = handlers-each ] || build_targets="$build_targets fuzz_$t"; done
if [ -n "$build_targets" ]; then
  configure "$build_dir" "-g -O1 -fno-omit-frame-pointer -fsanitize=fuzzer-no-link,address,undefined" \
    "-fsanitize=address,undefined" "$build_targets"
fi
case " $targets " in *" handlers-each "*)
  configure "$build_dir-each" "-g -O2 -fno-omit-frame-pointer -fsanitize=fuzzer-no-link,undefined" \
    "-fsanitize=undefined" fuzz_handlers ;;
esac

mkdir -p "$here/crashes" "$build_dir"
# fuzz_config, fuzz_audit and fuzz_queue write a file per input: on tmpfs when there is one.
if [ -z "${TMPDIR:-}" ] && [ -d /dev/shm ] && [ -w /dev/shm ]; then export TMPDIR=/dev/shm; fi
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
failed=0
summary=""
for t in $targets; do
  if [ "$t" = handlers-each ]; then
    log="$build_dir/handlers-each.log"
    echo "== fuzz_handlers per handler (log: $log)"
    status=0
    "$here/handlers_each.sh" "$build_dir-each/tests/fuzz/fuzz_handlers" "$build_dir-each/state" \
      "$here/crashes/handlers-each-" "$here/corpus/handlers" >"$log" 2>&1 || status=$?
    if [ "$status" != 0 ]; then
      failed=1
      grep -E '(CRASH|SHORT|NO RESULT|ERROR|oracle failed|runtime error)' "$log" |
        head -n 20 >&2 || true
    fi
    summary="$summary
$(tail -n 1 "$log") (exit $status)"
    continue
  fi
  corpus="$build_dir/corpus/$t"
  mkdir -p "$corpus"
  if [ "$extended" = 1 ]; then
    # handlers: every method mixed, a server round trip per input under ASan (~400/s): an hour,
    # FUZZ_HANDLERS_SECONDS to change (handlers-each gives each method its 10^6).
    case "$t" in gs1) limit="-runs=10000000" ;;
      handlers) limit="-max_total_time=${FUZZ_HANDLERS_SECONDS:-3600}" ;;
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
    grep -E '^(==[0-9]+== ?ERROR|.*oracle failed|.*runtime error|SUMMARY|artifact_prefix|Test unit written)' \
      "$log" | head -n 20 >&2 || true
  fi
  summary="$summary
fuzz_$t: ${runs:-?} executions, $crashes crashes (exit $status)"
done
echo "$summary"
exit "$failed"
