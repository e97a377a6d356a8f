#!/usr/bin/env bash
# Installs the npm packages of the manifest checks, exactly as package-lock.json pins them, into
# tests/ops/manifests/node_modules (ignored by git). Skips the work when node_modules was already
# installed from the same lockfile. Run by ctest (ops_manifests_npm_ci) before the checks.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
stamp="$here/node_modules/.quantd-lock.sha256"
want=$(sha256sum "$here/package-lock.json" | cut -d' ' -f1)
if [[ -f $stamp && $(cat "$stamp") == "$want" ]]; then
  echo "manifests/install: node_modules up to date"
  exit 0
fi
if ! command -v npm >/dev/null 2>&1; then
  echo "manifests/install: npm not found (scripts/install-deps.sh installs Debian's nodejs and npm)" >&2
  exit 1
fi
cd "$here"
npm ci --no-audit --no-fund --loglevel=error
echo "$want" > "$stamp"
echo "manifests/install: installed $(ls node_modules | wc -l) packages from package-lock.json"
