#!/bin/bash
# Regenerates the archives and copies of tests/data from the project's reference material (the
# read-only `shared` directory this repository was developed beside). Reference tooling only:
# nothing that builds or tests runs it; tests read what it wrote (see README.md, SOURCES.md).
#   tests/data/make-data.sh SHARED_DIR
# Archives are deterministic (sorted names, fixed owner, mode and mtime, xz -9e single-threaded),
# so re-running it on the same inputs changes no byte.
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: $0 SHARED_DIR" >&2; exit 2; }
shared=$(cd "$1" && pwd)
data=$(cd "$(dirname "$0")" && pwd)
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT

# pack ARCHIVE (relative to tests/data) DIR (the archive's members are relative to DIR) MEMBERS...
pack() {
  local archive=$1 dir=$2
  shift 2
  mkdir -p "$(dirname "$data/$archive")"
  tar -C "$dir" --sort=name --owner=0 --group=0 --numeric-owner --mtime='2000-01-01 00:00Z' \
    --mode='u+rwX,go+rX,go-w' -cf - "$@" | xz -9e -T1 > "$data/$archive"
}

# Tokenizers: every file of assets/tokenizers but its SOURCES.md.
mkdir -p "$stage/tokenizers"
cp -r "$shared"/assets/tokenizers/{qwen2,qwen2.5,qwen3,llama2-spm} "$stage/tokenizers/"
pack tokenizers.tar.xz "$stage" tokenizers

# Corpora: the first 256 KiB of each file, cut back to the end of its last whole line.
mkdir -p "$stage/corpora"
for name in tinyshakespeare war-and-peace wikitext2-raw-test; do
  head -c 262144 "$shared/assets/corpora/$name.txt" | sed '$d' > "$stage/corpora/$name.head.txt"
done
pack corpora.tar.xz "$stage" corpora

# stories260K: the Hugging Face layout only (config.json, model.safetensors).
mkdir -p "$stage/stories260K"
cp -r "$shared/assets/models/stories260K/hf" "$stage/stories260K/"
rm -f "$stage/stories260K/hf/golden_greedy.json"
pack models/stories260K.tar.xz "$stage" stories260K

# tiny-qwen3-moe-wp: the trained MoE model whole (checkpoint, tokenizer, calibration texts,
# held-out text, reference perplexities).
pack models/tiny-qwen3-moe-wp.tar.xz "$shared/assets/models" tiny-qwen3-moe-wp

# The AutoAWQ parity fixture, whole; its README stays readable beside the archive.
pack fixtures/autoawq-parity/llama-mha.tar.xz "$shared/fixtures/autoawq-parity" llama-mha
install -m 644 "$shared/fixtures/autoawq-parity/README.md" "$data/fixtures/autoawq-parity/README.md"

# Real config.json files (tiny, kept plain).
mkdir -p "$data/configs"
for name in llama-3.1-8b mistral-7b-v0.1 qwen2.5-0.5b-instruct qwen2.5-7b-instruct qwen3-0.6b \
    qwen3-30b-a3b mixtral-8x7b-v0.1; do
  install -m 644 "$shared/assets/configs/$name.config.json" "$data/configs/"
done

du -b "$data"/*.tar.xz "$data"/*/*.tar.xz "$data"/*/*/*.tar.xz 2>/dev/null
