#!/usr/bin/env bash
# A README table is the code's: compares the block between <!-- NAME:begin --> and
# <!-- NAME:end --> in README.md with the output of `steritrackd NAME` (access-matrix: the role
# table in server/rpc/access_policy.cc; config-keys: the flags in server/main.cc).
# Usage: $0 NAME path/to/steritrackd
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
name=${1:?usage: $0 NAME path/to/steritrackd}
steritrackd=${2:?usage: $0 NAME path/to/steritrackd}
documented=$(sed -n "/<!-- $name:begin -->/,/<!-- $name:end -->/p" "$root/README.md" | sed '1d;$d')
if [[ -z $documented ]]; then
  echo "README.md has no <!-- $name:begin --> ... <!-- $name:end --> block" >&2
  exit 1
fi
if ! diff <(printf '%s\n' "$documented") <("$steritrackd" "$name"); then
  echo "README.md's $name table differs from the code (left: README, right: code);" \
    "fix: replace the block with the output of 'steritrackd $name'" >&2
  exit 1
fi
echo "README $name table matches the code"
