#!/bin/sh
# Every unary handler fuzzed on its own (issue 12, item 5: >= 10^6 executions per handler): runs
# the fuzz_handlers binary once per method with FUZZ_HANDLERS_METHOD set and -runs=N, so that
# libFuzzer's own count is that handler's executions. Called by tests/fuzz/run.sh handlers-each.
#
#   handlers_each.sh BINARY STATE_DIR CRASH_PREFIX SEED_CORPUS
#
# FUZZ_HANDLERS_RUNS executions per method (default 1000000), FUZZ_PARALLEL methods at once
# (default: the number of processors). Each method runs on its own temporary database under
# TMPDIR, removed after it. A method's result is kept in STATE_DIR/done/<slug> (the method's name
# with '/' and '.' as '_': steritrack_v1_TreatmentService_OpenCartridge), keyed by the binary's
# SHA-256, once its run has ended: 10^6 executions, or a crash with its input saved
# (CRASH_PREFIX<slug>-crash-<sha1>). A run stopped any other way (interrupted, killed) leaves no
# result and runs again; so does everything after a rebuild; delete a result to run its method
# again. Prints one line per method and a total; exits 1 if any method crashed or has no result.
set -eu

slug_of() { printf '%s' "$1" | tr '/.' '__' | sed 's/^_*//'; }

# has_result FILE: FILE holds a result of this binary ($key) at this many executions ($runs).
has_result() {
  [ -f "$1" ] && [ "$(sed -n 's/^binary //p' "$1")" = "$key" ] &&
    [ "$(sed -n 's/^runs //p' "$1")" = "$runs" ]
}

one() {
  method=$1
  slug=$(slug_of "$method")
  done_file="$state/done/$slug"
  has_result "$done_file" && return 0
  rm -f "$done_file"
  corpus="$state/corpus/$slug"
  log="$state/logs/$slug.log"
  mkdir -p "$corpus"
  tmp=$(mktemp -d "${TMPDIR:-/tmp}/steritrack-fuzz-each.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  trap 'exit 130' INT TERM
  status=0
  started=$(date +%s)
  TMPDIR=$tmp FUZZ_HANDLERS_METHOD=$method "$binary" -runs="$runs" -print_final_stats=1 \
    -max_len=4096 -timeout=30 -artifact_prefix="$crash_prefix$slug-" "$corpus" "$seeds" \
    >"$log" 2>&1 || status=$?
  # A result only for a run that ended by itself: all its executions, or a crash whose input
  # libFuzzer saved. Interrupted (libFuzzer's exit 72, a signal) is no result.
  if [ "$status" != 0 ] && ! grep -q '^Test unit written' "$log"; then
    echo "$method: stopped (exit $status) without a crash; no result kept" >&2
    return 0
  fi
  executed=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  printf 'binary %s\nruns %s\nexecuted %s\nexit %s\nseconds %s\n' "$key" "$runs" \
    "${executed:-0}" "$status" "$(($(date +%s) - started))" >"$done_file.new"
  mv "$done_file.new" "$done_file"
}

if [ "${1:-}" = --one ]; then
  # The worker xargs starts: --one BINARY STATE CRASH_PREFIX SEEDS RUNS KEY METHOD
  binary=$2 state=$3 crash_prefix=$4 seeds=$5 runs=$6 key=$7
  one "$8"
  exit 0
fi

binary=$1
state=$2
crash_prefix=$3
seeds=$4
runs=${FUZZ_HANDLERS_RUNS:-1000000}
parallel=${FUZZ_PARALLEL:-$(nproc)}
key=$(sha256sum "$binary" | cut -c1-16)
mkdir -p "$state/done" "$state/logs" "$state/corpus"

FUZZ_HANDLERS_LIST=1 "$binary" >"$state/methods"
count=$(wc -l <"$state/methods")
[ "$count" -gt 30 ] || { echo "only $count methods listed" >&2; exit 1; }
kept=0
while read -r method; do
  if has_result "$state/done/$(slug_of "$method")"; then kept=$((kept + 1)); fi
done <"$state/methods"
echo "fuzzing $count handlers, $runs executions each, $parallel at a time; $kept done before on this binary (logs: $state/logs)"
xargs -P "$parallel" -I{} "$0" --one "$binary" "$state" "$crash_prefix" "$seeds" "$runs" "$key" {} \
  <"$state/methods"

crashed=0
short=0
total=0
reached=0
while read -r method; do
  slug=$(slug_of "$method")
  done_file="$state/done/$slug"
  if [ ! -f "$done_file" ]; then
    echo "  $method: NO RESULT (stopped before the end, log $state/logs/$slug.log)"
    short=$((short + 1))
    continue
  fi
  executed=$(sed -n 's/^executed //p' "$done_file")
  status=$(sed -n 's/^exit //p' "$done_file")
  seconds=$(sed -n 's/^seconds //p' "$done_file")
  total=$((total + executed))
  verdict=ok
  if [ "$status" != 0 ]; then
    verdict="CRASH (exit $status, log $state/logs/$slug.log)"
    crashed=$((crashed + 1))
    grep -E '^(==[0-9]+== ?ERROR|.*oracle failed|.*runtime error|SUMMARY|Test unit written)' \
      "$state/logs/$slug.log" | head -n 10 >&2 || true
  elif [ "$executed" -lt "$runs" ]; then
    verdict="SHORT ($executed of $runs)"
    short=$((short + 1))
  else
    reached=$((reached + 1))
  fi
  echo "  $method: $executed executions in $seconds s, $verdict"
done <"$state/methods"
echo "fuzz_handlers_each: $reached of $count handlers reached $runs executions each, $total executions, $crashed crashes, $short short or without a result"
[ "$crashed" = 0 ] && [ "$short" = 0 ]
