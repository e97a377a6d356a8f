#!/bin/bash
# Builds the CUDA gpu tests and benchmark here (engine-only Release build in build-dev/) and packs
# them, their non-system shared libraries (not CUDA's: the device machine has the CUDA 13 toolkit),
# the numpy checkpoint reader, the shared fixtures they read and the device script into DEST
# (default: the main checkout's git-ignored .device-bundle/, which the device tool sends; name it
# in `carry`).
#   scripts/device/make-bundle.sh [DEST]
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
dest=${1:-/work/main/.device-bundle}
shared=${QUANTD_SHARED_DIR:-$repo/../shared}
cd "$repo"
[ -f build-dev/build.ninja ] || cmake -S . -B build-dev -G Ninja -DQUANTD_ENGINE_ONLY=ON -DCMAKE_BUILD_TYPE=Release
nice cmake --build build-dev -j2 --target cuda_backend_gpu_test cuda_attention_gpu_test \
  cuda_kernels_gpu_test cuda_checkpoint_gpu_test quantd-awq-cuda-bench
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage"/{bin,lib,tools,shared/fixtures/autoawq-parity,shared/assets/models,configs}
cp build-dev/tests/cuda_backend_gpu_test build-dev/tests/cuda_attention_gpu_test \
  build-dev/tests/cuda_kernels_gpu_test build-dev/tests/cuda_checkpoint_gpu_test \
  build-dev/bin/quantd-awq-cuda-bench "$stage/bin/"
# The checkpoint test's independent reader (QUANTD_TEST_READER on the device).
cp tests/tools/awq_reader.py "$stage/tools/"
strip "$stage"/bin/*
# Non-system libraries: everything ldd resolves except glibc / libstdc++ / libgcc and CUDA.
ldd "$stage"/bin/* | awk '/=>/ {print $3}' | sort -u | while read -r lib; do
  case "$(basename "$lib")" in
    libc.so*|libm.so*|libdl.so*|librt.so*|libpthread.so*|libgcc_s.so*|libstdc++.so*|ld-linux*) ;;
    libcuda*|libcublas*|libcudart*) ;;
    *) cp -L "$lib" "$stage/lib/" ;;
  esac
done
cp -r "$shared/fixtures/autoawq-parity/llama-mha" "$stage/shared/fixtures/autoawq-parity/"
cp -r "$shared/assets/models/tiny-qwen2-wp" "$stage/shared/assets/models/"
cp "$shared"/assets/configs/qwen2.5-{0.5b,7b}-instruct.config.json "$stage/configs/"
mkdir -p "$dest"
tar -C "$stage" -cJf "$dest/bundle.tar.xz" .
cp scripts/device/run-gpu-checks.sh "$dest/"
du -sh "$dest"/*
