#!/usr/bin/env bash
# The sanitizer tier (issue 12, item 6): the whole suite again, every tier, built with
# AddressSanitizer and UndefinedBehaviorSanitizer (build/asan; CMakeLists.txt says which checks and
# why -O1) and run by ctest with leak detection: the server, the CLI and every test binary
# instrumented, the end-to-end tests on SQLite and PostgreSQL included. About 15 minutes to build
# and 30 to run on two cores. Run by deploy/test.sh (so by CI) after the normal suite, and by
# `tests/extended/run sanitize`; alone: tests/asan.sh, after the README set-up.
set -euo pipefail
cd "$(dirname "$0")/.."

cmake -S . -B build/asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSTERITRACK_FAILPOINTS=ON \
  -DSTERITRACK_SANITIZE=ON -DSTERITRACK_BUILD_BENCH=OFF ${STERITRACK_CMAKE_ARGS:-} >/dev/null
cmake --build build/asan -j2
echo "== the whole suite under ASan+UBSan (build/asan)"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build/asan --output-on-failure --timeout 1200 -j2
