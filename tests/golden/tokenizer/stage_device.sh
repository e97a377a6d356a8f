#!/bin/sh
# Copies what device_golden.py needs into device/ (git-ignored), which a device run carries.
# Usage: tests/golden/tokenizer/stage_device.sh [SHARED_DIR]
set -e
here=$(cd "$(dirname "$0")" && pwd)
shared=${1:-$here/../../../../shared}
rm -rf "$here/device" && mkdir -p "$here/device/llama2-spm" "$here/device/qwen2.5" "$here/device/corpora"
cp "$here/corpus.jsonl" "$here/device_golden.py" "$here/device/"
cp "$shared/assets/tokenizers/llama2-spm/tokenizer.model" "$here/device/llama2-spm/"
cp "$shared/assets/tokenizers/qwen2.5/vocab.json" "$shared/assets/tokenizers/qwen2.5/merges.txt" \
   "$shared/assets/tokenizers/qwen2.5/tokenizer_config.json" "$here/device/qwen2.5/"
cp "$shared"/assets/corpora/*.txt "$here/device/corpora/"
cp "$shared/assets/models/tiny-qwen2-wp/heldout.txt" "$here/device/"
