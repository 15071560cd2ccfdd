#!/usr/bin/env bash
# The README's roles table is the code's: compares the block between the access-matrix markers in
# README.md with `steritrackd access-matrix` (server/rpc/access_policy.cc). Usage: $0 STERITRACKD
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
steritrackd=${1:?usage: $0 path/to/steritrackd}
documented=$(sed -n '/<!-- access-matrix:begin -->/,/<!-- access-matrix:end -->/p' "$root/README.md" |
  sed '1d;$d')
if [[ -z $documented ]]; then
  echo "README.md has no <!-- access-matrix:begin --> ... <!-- access-matrix:end --> block" >&2
  exit 1
fi
if ! diff <(printf '%s\n' "$documented") <("$steritrackd" access-matrix); then
  echo "README.md's roles table differs from the code (left: README, right: code);" \
    "fix: replace the block with the output of 'steritrackd access-matrix'" >&2
  exit 1
fi
echo "README roles table matches the code"
