"""Writes llama2-hf/tokenizer.json: Llama 2's tokenizer.model in the layout transformers'
LlamaConverter (legacy=True, the layout of the tokenizer.json files that Llama-2 repositories ship)
gives it, so that Hugging Face's tokenizers (gen_ids.mjs) can serve as the reference for
tokenizer.model. Then checks it against SentencePiece itself (python3-sentencepiece, Debian) on the
corpus and prints where the two differ.

The conversion, from transformers' convert_slow_tokenizer (facts, restated):
  vocab   = the pieces in id order; merges = for every piece, each split into two pieces of the
            vocabulary, ordered by (id of left, id of right) within a piece, then all merges
            stably sorted by the merged piece's score, highest first;
  model   = BPE with byte_fallback, fuse_unk, unk_token = the unknown piece;
  added   = control and unknown pieces as special tokens (normalized false);
  normalizer = Sequence[Prepend("▁") if add_dummy_prefix, Replace(" " -> "▁")]; no pre-tokenizer;
  post_processor = TemplateProcessing "<s> $A"; decoder = Sequence[Replace("▁" -> " "),
  ByteFallback, Fuse, Strip(" ", 1, 0)].

Usage: /usr/bin/python3 llama2_tokenizer_json.py DATA_DIR
(DATA_DIR: the test data as the tests read it, <build>/tests/data; see tests/data/README.md)
"""
import base64
import json
import os
import sys

import sentencepiece
from sentencepiece import sentencepiece_model_pb2

here = os.path.dirname(os.path.abspath(__file__))
if len(sys.argv) != 2:
    sys.exit("usage: llama2_tokenizer_json.py DATA_DIR   (e.g. build/tests/data)")
data = sys.argv[1]
model_path = os.path.join(data, "tokenizers/llama2-spm/tokenizer.model")

proto = sentencepiece_model_pb2.ModelProto()
proto.ParseFromString(open(model_path, "rb").read())
assert proto.trainer_spec.model_type == sentencepiece_model_pb2.TrainerSpec.BPE

pieces = [(p.piece, p.score, p.type) for p in proto.pieces]
vocab = {piece: i for i, (piece, _, _) in enumerate(pieces)}
merges = []
for piece, score, _ in pieces:
    local = []
    for k in range(1, len(piece)):
        left, right = piece[:k], piece[k:]
        if left in vocab and right in vocab:
            local.append((left, right, score))
    local.sort(key=lambda m: (vocab[m[0]], vocab[m[1]]))
    merges.extend(local)
merges.sort(key=lambda m: m[2], reverse=True)

Type = sentencepiece_model_pb2.ModelProto.SentencePiece
added = [{"id": i, "content": piece, "single_word": False, "lstrip": False, "rstrip": False,
          "normalized": False, "special": True}
         for i, (piece, _, t) in enumerate(pieces) if t in (Type.CONTROL, Type.UNKNOWN)]
bos = pieces[proto.trainer_spec.bos_id][0]
normalizers = []
if proto.normalizer_spec.add_dummy_prefix:
    normalizers.append({"type": "Prepend", "prepend": "\u2581"})
normalizers.append({"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"})
doc = {
    "version": "1.0", "truncation": None, "padding": None, "added_tokens": added,
    "normalizer": {"type": "Sequence", "normalizers": normalizers},
    "pre_tokenizer": None,
    "post_processor": {
        "type": "TemplateProcessing",
        "single": [{"SpecialToken": {"id": bos, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
        "pair": [{"SpecialToken": {"id": bos, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                 {"SpecialToken": {"id": bos, "type_id": 1}}, {"Sequence": {"id": "B", "type_id": 1}}],
        "special_tokens": {bos: {"id": bos, "ids": [proto.trainer_spec.bos_id], "tokens": [bos]}},
    },
    "decoder": {"type": "Sequence", "decoders": [
        {"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "},
        {"type": "ByteFallback"}, {"type": "Fuse"},
        {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
    "model": {"type": "BPE", "dropout": None, "unk_token": pieces[proto.trainer_spec.unk_id][0],
              "continuing_subword_prefix": None, "end_of_word_suffix": None, "fuse_unk": True,
              "byte_fallback": True, "ignore_merges": False, "vocab": vocab,
              "merges": [[a, b] for a, b, _ in merges]},
}
os.makedirs(os.path.join(here, "llama2-hf"), exist_ok=True)
with open(os.path.join(here, "llama2-hf/tokenizer.json"), "w", encoding="utf-8") as f:
    json.dump(doc, f, ensure_ascii=False)
print("llama2-hf/tokenizer.json: %d pieces, %d merges" % (len(vocab), len(merges)))

# SentencePiece itself on the corpus, for comparison with the HF golden (gen_ids.mjs writes it).
sp = sentencepiece.SentencePieceProcessor(model_file=model_path)
golden_path = os.path.join(here, "llama2-hf-json.golden.jsonl")
if os.path.exists(golden_path):
    rows = [json.loads(l) for l in open(os.path.join(here, "corpus.jsonl"), encoding="utf-8")]
    golden = [json.loads(l) for l in open(golden_path, encoding="utf-8")][1:]
    differ = []
    for row, g in zip(rows, golden):
        text = base64.b64decode(row["b64"]).decode("utf-8", errors="replace")
        ids = [sp.bos_id()] + sp.encode(text)
        if ids != g["ids"]:
            differ.append(row["name"])
            print("sentencepiece differs on %s %r: %s vs HF %s" % (row["name"], text[:40], ids[:10], g["ids"][:10]))
    print("sentencepiece %s vs HF tokenizers: %d of %d texts differ" % (sentencepiece.__version__, len(differ), len(rows)))
    # Whole corpus files, compared by count and FNV-1a-64 of the ids (as gen_ids.mjs computes).
    files = json.loads(open(golden_path, encoding="utf-8").readline())["files"]
    for key, want in files.items():
        text = open(os.path.join(data, key), "rb").read().decode("utf-8", errors="replace")
        ids = sp.encode(text)
        h = 0xCBF29CE484222325
        for i in ids:
            for b in int(i).to_bytes(4, "little"):
                h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
        same = len(ids) == want["count"] and "%016x" % h == want["fnv1a64"]
        print("whole file %s: sentencepiece %s HF tokenizers (%d ids)" % (key, "equals" if same else "DIFFERS FROM", len(ids)))
