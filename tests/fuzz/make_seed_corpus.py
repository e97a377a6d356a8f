#!/usr/bin/env python3
"""Writes the generated part of the fuzz seed corpus (tests/fuzz/corpus): small safetensors files,
config.json variants, a trimmed copy of the demo model's tokenizer.json (BPE, ids < 400) and a
Metaspace variant, calibration JSON lines and two chat templates. Run from tests/fuzz/."""
import json
import struct

C = "corpus"
DEMO = "../../demo/models/tiny-qwen2-wp/model"


def safetensors(name, tensors, meta=None):
    header, data = {}, b""
    for key, (dtype, shape, raw) in tensors.items():
        header[key] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    if meta:
        header["__metadata__"] = meta
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(f"{C}/safetensors_header/{name}", "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + data)


def main():
    t = json.load(open(f"{DEMO}/tokenizer.json"))
    vocab = {k: v for k, v in t["model"]["vocab"].items() if v < 400}
    t["model"]["vocab"] = vocab
    t["model"]["merges"] = [m for m in t["model"]["merges"]
                            if m[0] in vocab and m[1] in vocab and (m[0] + m[1]) in vocab]
    json.dump(t, open(f"{C}/tokenizer_json/qwen2-bpe-400.json", "w"), ensure_ascii=False,
              separators=(",", ":"))
    t["normalizer"] = {"type": "Sequence", "normalizers": [
        {"type": "NFKC"}, {"type": "Lowercase"},
        {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"}]}
    t["pre_tokenizer"] = {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "first",
                          "split": False}
    t["decoder"] = {"type": "Sequence", "decoders": [
        {"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "},
        {"type": "ByteFallback"}, {"type": "Fuse"},
        {"type": "Strip", "content": " ", "start": 1, "stop": 0}]}
    t["post_processor"] = {
        "type": "TemplateProcessing",
        "single": [{"SpecialToken": {"id": "<|endoftext|>", "type_id": 0}},
                   {"Sequence": {"id": "A", "type_id": 0}}],
        "pair": [{"Sequence": {"id": "A", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}}],
        "special_tokens": {"<|endoftext|>": {"id": "<|endoftext|>", "ids": [0],
                                              "tokens": ["<|endoftext|>"]}}}
    t["model"]["byte_fallback"] = True
    json.dump(t, open(f"{C}/tokenizer_json/metaspace-template.json", "w"), ensure_ascii=False,
              separators=(",", ":"))

    json.dump(json.load(open(f"{DEMO}/config.json")), open(f"{C}/model_config/qwen2-tiny.json", "w"),
              indent=1)
    json.dump({"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 256,
               "intermediate_size": 512, "num_hidden_layers": 2, "num_attention_heads": 4,
               "num_key_value_heads": 4, "vocab_size": 1000, "rms_norm_eps": 1e-5,
               "rope_theta": 500000.0, "tie_word_embeddings": False, "torch_dtype": "bfloat16",
               "head_dim": 64,
               "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}},
              open(f"{C}/model_config/llama-rope-scaling.json", "w"), indent=1)
    json.dump({"architectures": ["Qwen2_5_VLForConditionalGeneration"], "model_type": "qwen2_5_vl",
               "text_config": {"hidden_size": 128, "intermediate_size": 256, "num_hidden_layers": 1,
                               "num_attention_heads": 2, "num_key_value_heads": 1,
                               "vocab_size": 500}},
              open(f"{C}/model_config/multimodal-text-config.json", "w"), indent=1)

    safetensors("f16.safetensors", {"a.weight": ("F16", [2, 2], struct.pack("<4e", 1, 2, -3, 0.5))})
    safetensors("mixed.safetensors",
                {"b": ("BF16", [3], b"\x80\x3f\x00\x40\x40\x40"),
                 "c": ("F32", [1, 2], struct.pack("<2f", 1.5, -2)),
                 "ids": ("I32", [2], struct.pack("<2i", 7, -1))}, {"format": "pt"})
    safetensors("empty-tensor.safetensors", {"empty": ("F32", [0, 4], b"")})

    open(f"{C}/calibration_jsonl/texts.jsonl", "w").write(
        '{"text": "Hello world, this is a calibration text."}\n\n{"text": "  \\u4f60\\u597d  "}\n'
        '{"input_ids": [1, 2, 3, 4, 5, 6, 7, 8, 9]}\nnot json\n[1,2]\n{"text": 5}\n{"other": "x"}\n')
    open(f"{C}/calibration_jsonl/ids.jsonl", "w").write(
        '{"input_ids": [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]}\n'
        '{"input_ids": [999, -1]}\n{"input_ids": "x"}\n')

    open(f"{C}/chat_template/chatml.jinja", "w").write(
        "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + "
        "message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}"
        "{{ '<|im_start|>assistant\\n' }}{% endif %}")
    open(f"{C}/chat_template/features.jinja", "w").write(
        "{%- set ns = namespace(n=0) -%}{%- macro say(x, y='d') -%}[{{ x|trim|upper }}:{{ y }}]"
        "{%- endmacro -%}{% for m in messages if m.role != 'tool' %}{% set ns.n = ns.n + 1 %}"
        "{{ say(m.content) }}{{ loop.index }}{{ m.content|length }}{{ m['role']|tojson }}"
        "{% if m.content is string and 'x' in m.content %}x{% elif not m.content %}e{% else %}"
        "{{ m.content[:3] ~ m.content[-2:] }}{% endif %}{% endfor %}{{ ns.n }}"
        "{{ [1,2,3]|join(',') }}{{ {'a': 1}.items()|list }}{{ range(3)|list }}"
        "{{ '%s-%d'|format('a', 2) }}{% raw %}{{ raw }}{% endraw %}{{ bos_token ~ eos_token }}"
        "{{ raise_exception('no') if false }}")


if __name__ == "__main__":
    main()
