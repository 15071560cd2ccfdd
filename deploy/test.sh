#!/usr/bin/env bash
# Second README command (and all that CI runs): install what is needed, build everything, and run
# the whole test suite: core, storage, RPC and end-to-end tiers.
set -euo pipefail
cd "$(dirname "$0")/.."

./deploy/install-deps.sh test
# buf (API lint and breaking-change check) comes from the npm registry, pinned.
if [[ ! -x build/tools/node_modules/.bin/buf ]]; then
  npm install --silent --no-audit --no-fund --prefix build/tools @bufbuild/buf@1.75.0 >/dev/null
fi
# The test build compiles in the failpoints the reliability tests arm (never in a shipped build).
cmake -S . -B build/test -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSTERITRACK_FAILPOINTS=ON \
  ${STERITRACK_CMAKE_ARGS:-} >/dev/null
cmake --build build/test -j2
ctest --test-dir build/test --output-on-failure --timeout 600 -j2
