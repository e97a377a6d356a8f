#!/bin/sh
# Copies what device_golden.py needs into device/ (git-ignored), which a device run carries.
# Usage: tests/golden/tokenizer/stage_device.sh DATA_DIR   (the test data, e.g. build/tests/data)
set -e
here=$(cd "$(dirname "$0")" && pwd)
data=${1:?usage: stage_device.sh DATA_DIR}
rm -rf "$here/device" && mkdir -p "$here/device/llama2-spm" "$here/device/qwen2.5" "$here/device/corpora"
cp "$here/corpus.jsonl" "$here/device_golden.py" "$here/device/"
cp "$data/tokenizers/llama2-spm/tokenizer.model" "$here/device/llama2-spm/"
cp "$data/tokenizers/qwen2.5/vocab.json" "$data/tokenizers/qwen2.5/merges.txt" \
   "$data/tokenizers/qwen2.5/tokenizer_config.json" "$here/device/qwen2.5/"
cp "$data"/corpora/*.txt "$here/device/corpora/"
cp "$data/models/tiny-qwen2-wp/heldout.txt" "$here/device/"
