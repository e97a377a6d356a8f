#!/bin/bash
# Builds what the end-to-end benchmark needs here and bundles it for the device machine: first the
# CUDA tests and engine-only benchmark through make-bundle.sh (bundle.tar.xz, run-gpu-checks.sh),
# then quantize-awq and quantd-e2e-bench with the non-system libraries they add (e2e.tar.xz) and
# run-e2e-bench.sh, all into DEST (default: the main checkout's git-ignored .device-bundle-e2e/,
# which the device tool sends when named in `carry`).
#   scripts/device/make-e2e-bundle.sh [DEST]
# Environment:
#   QUANTD_BUNDLE_BUILD      build directory to take quantize-awq and quantd-e2e-bench from
#                            (default build-dev, the Release engine-only build make-bundle.sh makes)
#   QUANTD_BUNDLE_E2E_ONLY=1 no gpu tests: make-bundle.sh is skipped and e2e.tar.xz carries every
#                            non-system library and the configs itself
#   QUANTD_BUNDLE_SEED_CALIB a calibration jsonl at the seed's scale (bench/calib/
#                            make_seed_calibration.py) for the seed-* steps, with the Qwen2.5
#                            tokenizer files and chat template of the build's test data
#                            (BUILD/tests/data/tokenizers/qwen2.5)
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
dest=${1:-/work/main/.device-bundle-e2e}
build=${QUANTD_BUNDLE_BUILD:-build-dev}
e2e_only=${QUANTD_BUNDLE_E2E_ONLY:-0}
cd "$repo"
mkdir -p "$dest"
if [ "$e2e_only" = 1 ]; then
  rm -f "$dest/bundle.tar.xz" "$dest/run-gpu-checks.sh"
else
  bash scripts/device/make-bundle.sh "$dest"
fi
nice cmake --build "$build" -j2 --target quantize-awq quantd-e2e-bench
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage"/{bin,lib,data/configs}
cp "$build"/bin/quantize-awq "$build"/bin/quantd-e2e-bench "$stage/bin/"
strip "$stage"/bin/*
have=$([ -f "$dest/bundle.tar.xz" ] && tar -tJf "$dest/bundle.tar.xz" | sed -n 's|^\./lib/||p' || true)
ldd "$stage"/bin/* | awk '/=>/ {print $3}' | sort -u | while read -r lib; do
  name=$(basename "$lib")
  case "$name" in
    libc.so*|libm.so*|libdl.so*|librt.so*|libpthread.so*|libgcc_s.so*|libstdc++.so*|ld-linux*) ;;
    libcuda*|libcublas*|libcudart*) ;;
    *) grep -qx "$name" <<<"$have" || cp -L "$lib" "$stage/lib/" ;;
  esac
done
cp tests/data/configs/*.config.json "$stage/data/configs/"
if [ -n "${QUANTD_BUNDLE_SEED_CALIB:-}" ]; then
  mkdir -p "$stage/seed/tokenizer"
  cp "$QUANTD_BUNDLE_SEED_CALIB" "$stage/seed/calib_8192.jsonl"
  cp "$build"/tests/data/tokenizers/qwen2.5/{vocab.json,merges.txt,tokenizer_config.json,chat_template.jinja} \
    "$stage/seed/tokenizer/"
fi
tar -C "$stage" -cJf "$dest/e2e.tar.xz" .
cp scripts/device/run-e2e-bench.sh "$dest/"
du -sh "$dest"/*
