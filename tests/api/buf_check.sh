#!/usr/bin/env bash
# API hygiene: buf lint (STANDARD, see proto/buf.yaml) and buf breaking against the previous commit
# of main. Run by ctest; $BUF is the buf binary installed from the npm registry by deploy/test.sh.
set -euo pipefail
mode=$1
root=$(cd "$(dirname "$0")/../.." && pwd)
buf=${BUF:-$root/build/tools/node_modules/.bin/buf}
if [[ ! -x $buf ]]; then
  echo "buf not found at $buf (deploy/test.sh installs it with npm)" >&2
  exit 1
fi
cd "$root/proto"
case $mode in
  lint)
    "$buf" lint
    echo "buf lint: OK"
    ;;
  breaking)
    # The previous commit is the baseline. Without it (a shallow clone) or before buf.yaml existed,
    # the check compares the API with itself and says so.
    against=HEAD~1
    if ! git cat-file -e "$against:proto/buf.yaml" 2>/dev/null; then
      echo "note: $against has no proto/buf.yaml (or is not in this clone); comparing against HEAD" >&2
      against=HEAD
    fi
    "$buf" breaking --against "../.git#ref=$against,subdir=proto"
    echo "buf breaking against $against: OK"
    ;;
  *)
    echo "usage: $0 lint|breaking" >&2
    exit 2
    ;;
esac
