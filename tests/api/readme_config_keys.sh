#!/usr/bin/env bash
# The README's settings table is the code's: compares the block between the config-keys markers in
# README.md with `steritrackd config-keys` (the flags in server/main.cc). Usage: $0 STERITRACKD
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
steritrackd=${1:?usage: $0 path/to/steritrackd}
documented=$(sed -n '/<!-- config-keys:begin -->/,/<!-- config-keys:end -->/p' "$root/README.md" |
  sed '1d;$d')
if [[ -z $documented ]]; then
  echo "README.md has no <!-- config-keys:begin --> ... <!-- config-keys:end --> block" >&2
  exit 1
fi
if ! diff <(printf '%s\n' "$documented") <("$steritrackd" config-keys); then
  echo "README.md's settings table differs from the code (left: README, right: code);" \
    "fix: replace the block with the output of 'steritrackd config-keys'" >&2
  exit 1
fi
echo "README settings table matches the code"
