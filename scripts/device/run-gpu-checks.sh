#!/bin/bash
# Runs on the device machine (from the repository root, with the bundle's directory carried):
# unpacks the bundle that make-bundle.sh put beside this script, runs the CUDA gpu tests (attention
# kernel, then CPU parity) and the AWQ benchmark, writes logs under $OUT, prints a short table last.
#   bash .device-bundle*/run-gpu-checks.sh [attention] [tests] [bench-small] [bench-large] [bench-7b]
# (no argument: tests and bench-small; `tests` includes `attention`)
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${OUT:-/tmp/quantd-out}
mkdir -p "$out"
b=/tmp/quantd-bundle
rm -rf "$b" && mkdir -p "$b" && tar -C "$b" -xJf "$here/bundle.tar.xz" || exit 1
export LD_LIBRARY_PATH="$b/lib:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}"
export QUANTD_TEST_SHARED_DIR="$b/shared"
steps=("$@")
[ ${#steps[@]} -eq 0 ] && steps=(tests bench-small)
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm --format=csv,noheader
summary=()
bench() {  # name, args...
  local name=$1; shift
  local start=$(date +%s)
  "$b/bin/quantd-awq-cuda-bench" "$@" > "$out/$name.md" 2> "$out/$name.log"
  local rc=$?
  tail -n 3 "$out/$name.log"
  summary+=("$name rc=$rc wall=$(( $(date +%s) - start ))s")
  summary+=("$(tail -n 1 "$out/$name.md")")
  rm -rf /tmp/quantd-bench-model
}
gtest() {  # which (attention | backend), the summary lines' pattern
  local start=$(date +%s)
  "$b/bin/cuda_$1_gpu_test" > "$out/$1_test.log" 2>&1
  local rc=$?
  grep -E "^\[(attention|parity)|^\[  (FAILED|PASSED|SKIPPED)|Failure|Expected|Which is|first:" \
    "$out/$1_test.log" | head -40
  summary+=("$1 gpu test rc=$rc wall=$(( $(date +%s) - start ))s")
  summary+=("$(grep "$2" "$out/$1_test.log" | tr '\n' ' ')")
}
for step in "${steps[@]}"; do
  case "$step" in
    attention|tests)
      gtest attention "^\[attention-timing\]"
      [ "$step" = tests ] && gtest backend "^\[parity\]"
      ;;
    bench-small)
      bench qwen05b_128x512 --config "$b/configs/qwen2.5-0.5b-instruct.config.json" --blocks 128 --len 512 ;;
    bench-large)
      bench qwen05b_256x2048_4layers --config "$b/configs/qwen2.5-0.5b-instruct.config.json" --blocks 256 --len 2048 --layers 4 ;;
    bench-7b)
      bench qwen7b_128x512_2layers --config "$b/configs/qwen2.5-7b-instruct.config.json" --blocks 128 --len 512 --layers 2 ;;
  esac
done
echo "== summary"
printf '%s\n' "${summary[@]}"
