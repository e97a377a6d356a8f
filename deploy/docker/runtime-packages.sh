#!/usr/bin/env bash
# Prints, one per line, the Debian/NVIDIA packages that own the shared libraries the given
# executables load (ldd, then dpkg -S on each resolved library). The Dockerfile's build stage runs
# it so that the runtime stage installs exactly the runtime libraries (no -dev packages, no
# compilers) without a hand-kept list that drifts from the build.
set -euo pipefail
if [[ $# -eq 0 ]]; then
  echo "usage: runtime-packages.sh EXECUTABLE..." >&2
  exit 2
fi
declare -A packages=()
for exe in "$@"; do
  if ! ldd_out=$(ldd "$exe" 2>&1); then
    echo "runtime-packages: ldd failed on $exe: $ldd_out" >&2
    exit 1
  fi
  if grep -q "not found" <<<"$ldd_out"; then
    echo "runtime-packages: $exe has unresolved libraries:" >&2
    grep "not found" <<<"$ldd_out" >&2
    exit 1
  fi
  while read -r lib; do
    real=$(readlink -f "$lib")
    # dpkg records paths as installed; try the resolved file first, then the path ldd printed.
    owner=$(dpkg -S "$real" 2>/dev/null || dpkg -S "$lib" 2>/dev/null || true)
    if [[ -z $owner ]]; then
      echo "runtime-packages: no package owns $lib (needed by $exe)" >&2
      exit 1
    fi
    packages["${owner%%:*}"]=1
  done < <(awk '/=> \// { print $3 }' <<<"$ldd_out")
done
printf '%s\n' "${!packages[@]}" | sort
