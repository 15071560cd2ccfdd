#!/usr/bin/env bash
# The ThreadSanitizer tier (issue 12, item 6): the code where threads meet, built with
# -fsanitize=thread in build/tsan (tests/CMakeLists.txt: tsan_test) and run with halt_on_error,
# so a data race or a lock-order inversion fails the run:
#   - the writer: the SQLite store's group commit and deferred commits (GroupCommitTest), the
#     call lanes and their bounded queues (LimitsTest, FewThreadsTest), the background lane;
#   - the event stream: WatchEvents read while other threads write (EventStreamTest), and
#     writers, readers, an event stream and a report at once (ContentionTest);
#   - the offline queue: several CLIs queueing and delivering on one queue file
#     (OfflineQueueConcurrencyTest).
# Run by deploy/test.sh (so by CI), after the ASan tier, and by `tests/extended/run tsan`; alone:
# tests/tsan.sh, after the README set-up. Debian's gRPC, protobuf, SQLite and abseil are
# not instrumented: races inside them are not seen, only those in our code, which is where our
# threads share memory; tests/sanitizers/tsan_absl.cc tells ThreadSanitizer what abseil's
# mutexes synchronise.
set -euo pipefail
cd "$(dirname "$0")/.."

cmake -S . -B build/tsan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSTERITRACK_FAILPOINTS=ON \
  -DSTERITRACK_TSAN=ON -DSTERITRACK_BUILD_BENCH=OFF ${STERITRACK_CMAKE_ARGS:-} >/dev/null
cmake --build build/tsan -j2 --target tsan_test
echo "== TSan: the writer, the event stream, contention, the offline queue"
# tests/sanitizers/tsan.supp: what happens inside gRPC (its threads hand calls to one another
# with synchronisation TSan cannot see); our code is checked everywhere.
TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:suppressions=$PWD/tests/sanitizers/tsan.supp${TSAN_OPTIONS:+:$TSAN_OPTIONS}" \
  build/tsan/tests/tsan_test --gtest_brief=1
