#!/usr/bin/env bash
# House style: every C++ file of the project is formatted by clang-format with the repository's
# .clang-format (Google style, 100 columns). Run by ctest; fails naming each file that differs.
# To fix: clang-format -i $(git ls-files '*.cc' '*.h')
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
clang_format=${CLANG_FORMAT:-clang-format}
if ! command -v "$clang_format" >/dev/null 2>&1; then
  echo "clang-format not found (deploy/install-deps.sh test installs Debian's clang-format)" >&2
  exit 1
fi
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  mapfile -t files < <(git ls-files '*.cc' '*.h')
else
  mapfile -t files < <(find server client include tests -name '*.cc' -o -name '*.h' | sort)
fi
bad=()
for f in "${files[@]}"; do
  [[ -f $f ]] || continue
  if ! "$clang_format" --style=file --dry-run -Werror "$f" >/dev/null 2>&1; then
    bad+=("$f")
  fi
done
if ((${#bad[@]} > 0)); then
  echo "not formatted with clang-format (.clang-format), ${#bad[@]} file(s):" >&2
  printf '  %s\n' "${bad[@]}" >&2
  echo "fix: clang-format -i \$(git ls-files '*.cc' '*.h')" >&2
  exit 1
fi
echo "clang-format: ${#files[@]} files OK"
