#!/bin/bash
# Fails when a file that builds or tests quantd names the `shared` reference directory that the
# repository was developed beside: a clone has nothing beside it, so everything a test or benchmark
# reads must live in the repository (tests/data/, demo/). Checked: every file under tests/, bench/
# and cmake/, and every CMakeLists.txt. Run by ctest (no_shared_refs_test), hence by `make test`.
#   scripts/check-no-shared-refs.sh [REPO_ROOT]
set -euo pipefail
root=${1:-$(cd "$(dirname "$0")/.." && pwd)}
cd "$root"
pattern='\.\./shared([^A-Za-z0-9_.-]|$)|QUANTD_SHARED_DIR'
files=()
while IFS= read -r -d '' f; do files+=("$f"); done < <(
  find tests bench cmake -type f -not -path '*/node_modules/*' -print0
  find . \( -path ./tests -o -path ./bench -o -path ./cmake -o -name 'build*' -o -name .git \
    -o -name node_modules \) -prune -o -name CMakeLists.txt -type f -print0)
hits=$(grep -nIE "$pattern" "${files[@]}" || true)
if [ -n "$hits" ]; then
  echo "error: these files name ../shared (or QUANTD_SHARED_DIR); a fresh clone has no such" >&2
  echo "directory. Copy what they need into tests/data/ (see tests/data/README.md):" >&2
  echo "$hits" | cut -c1-200 >&2
  exit 1
fi
echo "no file under tests/, bench/, cmake/ or any CMakeLists.txt names ../shared (${#files[@]} files)"
