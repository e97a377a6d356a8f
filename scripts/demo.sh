#!/usr/bin/env bash
# make demo: quantizes the small real model kept in demo/models with the default settings of a job
# (chat-template calibration, 4-bit, group 128, GEMM) and prints where the checkpoint was written.
set -euo pipefail
build=${1:-build}
root=$(cd "$(dirname "$0")/.." && pwd)
model="$root/demo/models/tiny-qwen2-wp/model"
calib="$root/demo/models/tiny-qwen2-wp/calib.jsonl"
out="$root/demo-output/tiny-qwen2-wp-awq"

AWQ_CALIB_JSONL="$calib" "$root/$build/bin/quantize-awq" \
  --model_dir "$model" --output_dir "$out" \
  --num_calib 128 --max_seq_len 512 \
  --eval_text "$root/demo/models/tiny-qwen2-wp/heldout.txt" \
  < /dev/null
echo
echo "Quantized checkpoint written to: $out"
