"""Golden ids from Hugging Face transformers itself, run on the GPU machine (its python3 has
transformers, tokenizers and sentencepiece; no network). Writes to $OUT:

  llama2-hf.golden.jsonl          transformers' LlamaTokenizer loaded from tokenizer.model alone
  llama2-hf/tokenizer.json        that tokenizer as transformers converts and saves it
  llama2-hf/tokenizer_config.json
  qwen2.5-transformers.golden.jsonl  AutoTokenizer on the Qwen2.5 slow files (vocab + merges + config)
  report.txt                      versions, and where sentencepiece itself differs from transformers

Same line format as gen_ids.mjs. Usage: python3 device_golden.py STAGE_DIR OUT_DIR, where STAGE_DIR
holds corpus.jsonl, llama2-spm/tokenizer.model, qwen2.5/{vocab.json,merges.txt,tokenizer_config.json}
and corpora/*.txt, heldout.txt (stage_device.sh copies them).
"""
import base64
import json
import os
import shutil
import sys
import traceback

import sentencepiece
import tokenizers
import transformers

stage, out = sys.argv[1], sys.argv[2]
report = open(os.path.join(out, "report.txt"), "w")


def log(*args):
    print(*args, file=report, flush=True)
    print(*args, flush=True)


log("transformers", transformers.__version__, "tokenizers", tokenizers.__version__,
    "sentencepiece", sentencepiece.__version__)

corpus = [json.loads(line) for line in open(os.path.join(stage, "corpus.jsonl"), encoding="utf-8")]
texts = [(row["name"], base64.b64decode(row["b64"]).decode("utf-8", errors="replace")) for row in corpus]
whole = sorted(f for f in os.listdir(os.path.join(stage, "corpora")) if f.endswith(".txt"))
whole = [("corpora/" + f, os.path.join(stage, "corpora", f)) for f in whole]
whole.append(("models/tiny-qwen2-wp/heldout.txt", os.path.join(stage, "heldout.txt")))


def fnv1a64(ids):
    h = 0xCBF29CE484222325
    for i in ids:
        for b in int(i).to_bytes(4, "little"):
            h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return "%016x" % h


def write_golden(tok, path, reference):
    files = {}
    for key, file in whole:
        ids = tok.encode(open(file, "rb").read().decode("utf-8", errors="replace"), add_special_tokens=False)
        files[key] = {"count": len(ids), "fnv1a64": fnv1a64(ids)}
    lines = [json.dumps({"reference": reference, "files": files})]
    for name, text in texts:
        ids = tok.encode(text, add_special_tokens=True)
        plain = tok.encode(text, add_special_tokens=False)
        row = {"name": name, "ids": ids}
        if plain != ids:
            row["ids_no_special"] = plain
        row["decoded"] = tok.decode(ids, skip_special_tokens=False)
        skipped = tok.decode(ids, skip_special_tokens=True)
        if skipped != row["decoded"]:
            row["decoded_skip"] = skipped
        lines.append(json.dumps(row, ensure_ascii=False))
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    log(os.path.basename(path), json.dumps(files))


# Llama 2 from tokenizer.model alone: transformers converts it to a tokenizers pipeline.
llama_dir = os.path.join(stage, "llama2-spm")
llama = None
for how in ("LlamaTokenizer", "LlamaTokenizerFast", "AutoTokenizer"):
    try:
        cls = getattr(transformers, how)
        llama = cls.from_pretrained(llama_dir)
        log("llama loaded with", how, "->", type(llama).__name__)
        break
    except Exception:
        log("llama", how, "failed:", traceback.format_exc(limit=2))
if llama is not None:
    log("llama init kwargs:", {k: str(v) for k, v in getattr(llama, "init_kwargs", {}).items()})
    saved = "/tmp/llama2-hf"
    llama.save_pretrained(saved)
    os.makedirs(os.path.join(out, "llama2-hf"), exist_ok=True)
    for f in ("tokenizer.json", "tokenizer_config.json"):
        if os.path.exists(os.path.join(saved, f)):
            shutil.copy(os.path.join(saved, f), os.path.join(out, "llama2-hf", f))
    log("saved files:", sorted(os.listdir(saved)))
    write_golden(llama, os.path.join(out, "llama2-hf.golden.jsonl"),
                 "transformers %s %s from tokenizer.model" % (transformers.__version__, type(llama).__name__))
    # sentencepiece itself, for the report: where does it differ from transformers?
    sp = sentencepiece.SentencePieceProcessor(model_file=os.path.join(llama_dir, "tokenizer.model"))
    differ = 0
    for name, text in texts:
        a = [sp.bos_id()] + sp.encode(text)
        b = llama.encode(text, add_special_tokens=True)
        if a != b:
            differ += 1
            if differ <= 15:
                log("spm differs:", name, repr(text[:60]), a[:12], b[:12])
    log("sentencepiece vs transformers: %d of %d texts differ" % (differ, len(texts)))

# Qwen2.5 slow files.
try:
    qwen = transformers.AutoTokenizer.from_pretrained(os.path.join(stage, "qwen2.5"))
    log("qwen2.5 loaded ->", type(qwen).__name__)
    write_golden(qwen, os.path.join(out, "qwen2.5-transformers.golden.jsonl"),
                 "transformers %s %s from vocab.json + merges.txt + tokenizer_config.json"
                 % (transformers.__version__, type(qwen).__name__))
except Exception:
    log("qwen2.5 failed:", traceback.format_exc())
