#!/usr/bin/env bash
# First README command: install what is needed, build in Release, and run steritrackd in the
# foreground on 127.0.0.1:50051 with ./steritrack.db, loading the demo data set into a new database.
set -euo pipefail
cd "$(dirname "$0")/.."

./deploy/install-deps.sh
cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DSTERITRACK_BUILD_TESTS=OFF -DSTERITRACK_BUILD_BENCH=OFF >/dev/null
cmake --build build/release -j2 --target steritrackd steritrack

echo "steritrack: server starting on 127.0.0.1:50051 (Ctrl-C stops it); the CLI is" \
  "$(pwd)/build/release/client/steritrack" >&2
exec build/release/server/steritrackd --db "${STERITRACK_DB:-steritrack.db}" \
  --listen "${STERITRACK_LISTEN:-127.0.0.1:50051}" --demo "$@"
