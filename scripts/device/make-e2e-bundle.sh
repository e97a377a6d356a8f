#!/bin/bash
# Builds what the end-to-end benchmark needs here and bundles it for the device machine: first the
# CUDA tests and engine-only benchmark through make-bundle.sh (bundle.tar.xz, run-gpu-checks.sh),
# then quantize-awq and quantd-e2e-bench with the non-system libraries they add (e2e.tar.xz) and
# run-e2e-bench.sh, all into DEST (default: the main checkout's git-ignored .device-bundle-e2e/,
# which the device tool sends when named in `carry`).
#   [QUANTD_BUNDLE_BUILD=build] scripts/device/make-e2e-bundle.sh [DEST]
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
dest=${1:-/work/main/.device-bundle-e2e}
cd "$repo"
bash scripts/device/make-bundle.sh "$dest"
build=${QUANTD_BUNDLE_BUILD:-build-dev}
nice cmake --build "$build" -j2 --target quantize-awq quantd-e2e-bench
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage"/{bin,lib}
cp "$build"/bin/quantize-awq "$build"/bin/quantd-e2e-bench "$stage/bin/"
strip "$stage"/bin/*
have=$(tar -tJf "$dest/bundle.tar.xz" | sed -n 's|^\./lib/||p')
ldd "$stage"/bin/* | awk '/=>/ {print $3}' | sort -u | while read -r lib; do
  name=$(basename "$lib")
  case "$name" in
    libc.so*|libm.so*|libdl.so*|librt.so*|libpthread.so*|libgcc_s.so*|libstdc++.so*|ld-linux*) ;;
    libcuda*|libcublas*|libcudart*) ;;
    *) grep -qx "$name" <<<"$have" || cp -L "$lib" "$stage/lib/" ;;
  esac
done
tar -C "$stage" -cJf "$dest/e2e.tar.xz" .
cp scripts/device/run-e2e-bench.sh "$dest/"
du -sh "$dest"/*
