#!/bin/bash
# Builds the CUDA gpu tests and benchmark here (engine-only Release build in build-dev/, or the build
# directory QUANTD_BUNDLE_BUILD names) and packs
# them, their non-system shared libraries (not CUDA's: the device machine has the CUDA 13 toolkit),
# the numpy checkpoint reader, the test data they read (from build-dev/tests/data, the configure-time
# mirror of tests/data; the demo model is not packed: run-gpu-checks.sh links the device checkout's
# demo/models/tiny-qwen2-wp) and the device script into DEST
# (default: the main checkout's git-ignored .device-bundle/, which the device tool sends; name it
# in `carry`).
#   [QUANTD_BUNDLE_BUILD=build] scripts/device/make-bundle.sh [DEST]
# QUANTD_BUNDLE_BUILD=DIR takes the binaries from an existing CUDA build directory instead of the
# engine-only Release build-dev/ (saves a second build of the engine on a busy machine).
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
dest=${1:-/work/main/.device-bundle}
build=${QUANTD_BUNDLE_BUILD:-build-dev}
cd "$repo"
[ -f "$build/build.ninja" ] || cmake -S . -B "$build" -G Ninja -DQUANTD_ENGINE_ONLY=ON -DCMAKE_BUILD_TYPE=Release
nice cmake --build "$build" -j2 --target cuda_backend_gpu_test cuda_attention_gpu_test \
  cuda_kernels_gpu_test cuda_checkpoint_gpu_test quantd-awq-cuda-bench
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage"/{bin,lib,tools,data/configs}
cp "$build"/tests/cuda_backend_gpu_test "$build"/tests/cuda_attention_gpu_test \
  "$build"/tests/cuda_kernels_gpu_test "$build"/tests/cuda_checkpoint_gpu_test \
  "$build"/bin/quantd-awq-cuda-bench "$stage/bin/"
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
data=$build/tests/data
# Every config: the benchmarks' Qwen2.5 and Llama 3.1, the families' gpu tests' real geometries.
cp "$data"/configs/*.config.json "$stage/data/configs/"
mkdir -p "$dest"
tar -C "$stage" -cJf "$dest/bundle.tar.xz" .
cp scripts/device/run-gpu-checks.sh "$dest/"
du -sh "$dest"/*
