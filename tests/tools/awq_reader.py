#!/usr/bin/python3
"""Independent reader of quantd's AWQ checkpoints, written from the project's output-format
specification (spec/output-format.md of its reference material).

Loads a model directory (float or AutoAWQ GEMM), unpacks qweight/qzeros with the reverse nibble
order [0,4,1,5,2,6,3,7], dequantizes W^T[k, n] = (q - z) * s in float16, runs the float forward
pass of a Llama / Qwen2 / Qwen3 / Mistral / Gemma 2 / Gemma 3 text / Phi-3 decoder — or of a
Qwen3-MoE / Qwen2-MoE / Mixtral one (moe_block: router softmax, top-k, per-expert MLPs, the gated
shared expert; per-expert or fused 3-D experts, AWQ experts dequantized) — in float32
numpy (written from the transformers modeling files' semantics, not from quantd's code) and
compares logits:

  awq_reader.py --float FLOAT_DIR --quantized OUT_DIR --calib calib.jsonl --rows 4
  awq_reader.py --float FLOAT_DIR --rtn 128 --calib calib.jsonl --rows 4   (round-to-nearest)

prints one JSON object: {"relative_logits_error": ‖logits − logits_float‖ / ‖logits_float‖,
"float_nll": mean next-token NLL of the float model over the rows, ...}.
Uses only numpy (system /usr/bin/python3).
"""
import argparse
import json
import math
import os
import struct
import sys

import numpy as np

REVERSE_ORDER = [0, 4, 1, 5, 2, 6, 3, 7]
DTYPES = {"F16": np.float16, "F32": np.float32, "I32": np.int32, "BF16": np.uint16}


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    base = 8 + n
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        arr = np.frombuffer(data[base + begin:base + end], dtype=DTYPES[info["dtype"]])
        if info["dtype"] == "BF16":
            arr = (arr.astype(np.uint32) << 16).view(np.float32)
        out[name] = arr.reshape(info["shape"])
    return out


def read_model_dir(model_dir):
    index = os.path.join(model_dir, "model.safetensors.index.json")
    tensors = {}
    if os.path.exists(index):
        with open(index) as f:
            files = sorted(set(json.load(f)["weight_map"].values()))
    else:
        files = ["model.safetensors"]
    for name in files:
        tensors.update(read_safetensors(os.path.join(model_dir, name)))
    with open(os.path.join(model_dir, "config.json")) as f:
        config = json.load(f)
    return config, tensors


def unpack(packed):
    """[rows, out/8] int32 -> [rows, out] codes 0..15."""
    words = packed.view(np.uint32)
    rows, cols = words.shape
    codes = np.empty((rows, cols * 8), dtype=np.int32)
    for j in range(8):
        codes[:, j::8] = (words >> np.uint32(4 * REVERSE_ORDER[j])) & np.uint32(0xF)
    return codes


def dequantize(qweight, qzeros, scales):
    """Returns the float weight [out, in] in nn.Linear layout."""
    codes = unpack(qweight)                       # [in, out]
    zeros = unpack(qzeros)                        # [in/G, out]
    group = codes.shape[0] // zeros.shape[0]
    z = np.repeat(zeros, group, axis=0).astype(np.float16)
    s = np.repeat(scales.astype(np.float16), group, axis=0)
    w_t = (codes.astype(np.float16) - z) * s      # float16 multiply, as the readers do
    return w_t.astype(np.float32).T.copy()


def rtn(weight, group):
    """Round-to-nearest 4-bit asymmetric min-max group quantization (no AWQ), float16."""
    w = weight.astype(np.float16).astype(np.float32).reshape(-1, group)
    mx, mn = w.max(1, keepdims=True), w.min(1, keepdims=True)
    scale = np.maximum(mx - mn, 1e-5) / 15
    zero = np.clip(-np.round(mn / scale), 0, 15)
    q = np.clip(np.round(w / scale) + zero, 0, 15)
    return ((q - zero) * scale).reshape(weight.shape).astype(np.float32)


def family(config):
    arch = (config.get("architectures") or [""])[0]
    kinds = {"LlamaForCausalLM": "llama", "Qwen2ForCausalLM": "qwen2", "Qwen3ForCausalLM": "qwen3",
             "MistralForCausalLM": "mistral", "Gemma2ForCausalLM": "gemma2",
             "Gemma3ForCausalLM": "gemma3", "Phi3ForCausalLM": "phi3",
             "Qwen3MoeForCausalLM": "qwen3_moe", "Qwen2MoeForCausalLM": "qwen2_moe",
             "MixtralForCausalLM": "mixtral"}
    if arch in kinds:
        return kinds[arch]
    types = {"llama": "llama", "qwen2": "qwen2", "qwen3": "qwen3", "mistral": "mistral",
             "gemma2": "gemma2", "gemma3_text": "gemma3", "phi3": "phi3", "qwen3_moe": "qwen3_moe",
             "qwen2_moe": "qwen2_moe", "mixtral": "mixtral"}
    if config.get("model_type") in types:
        return types[config["model_type"]]
    raise ValueError("unsupported model %r" % arch)


def to_dtype(x, dtype):
    """Rounds float32 values to the config's dtype (round to nearest even), as a torch cast."""
    x = np.asarray(x, dtype=np.float32)
    if dtype == "float16":
        return x.astype(np.float16).astype(np.float32)
    if dtype == "bfloat16":
        bits = np.atleast_1d(x).view(np.uint32).astype(np.uint64)
        one, sixteen = np.uint64(1), np.uint64(16)
        bits = (bits + np.uint64(0x7FFF) + ((bits >> sixteen) & one)) >> sixteen << sixteen
        return bits.astype(np.uint32).view(np.float32).reshape(x.shape)
    return x


def linear_weights(tensors, prefix, rtn_group, parts=None):
    """{name: (w, b)} of a Linear (or of the parts of a fused one: [(name, rows), ...])."""
    if prefix + ".qweight" in tensors:
        w = dequantize(tensors[prefix + ".qweight"], tensors[prefix + ".qzeros"],
                       tensors[prefix + ".scales"])
    else:
        w = tensors[prefix + ".weight"].astype(np.float32)
        if rtn_group:
            w = rtn(w, rtn_group)
    b = tensors.get(prefix + ".bias")
    b = None if b is None else b.astype(np.float32)
    if not parts:
        return w, b
    out, row = {}, 0
    for name, rows in parts:
        out[name] = (w[row:row + rows], None if b is None else b[row:row + rows])
        row += rows
    return out


def rope_inv_freq(theta, params, head_dim):
    inv = 1.0 / (theta ** (np.arange(0, head_dim, 2, dtype=np.float64) / head_dim))
    kind = (params or {}).get("rope_type", (params or {}).get("type", "default"))
    if kind == "linear":
        inv = inv / params["factor"]
    elif kind == "llama3":
        factor, low, high = params["factor"], params["low_freq_factor"], params["high_freq_factor"]
        old = params["original_max_position_embeddings"]
        wavelen = 2 * math.pi / inv
        smooth = (old / wavelen - low) / (high - low)
        scaled = np.where(wavelen > old / low, inv / factor, inv)
        medium = (wavelen <= old / low) & (wavelen >= old / high)
        inv = np.where(medium, (1 - smooth) * inv / factor + smooth * inv, scaled)
    elif kind != "default":
        raise ValueError("unsupported rope type " + kind)
    return inv.astype(np.float32)


def layer_settings(config, kind, layers):
    """Per layer: (sliding window or 0, rope theta, rope parameters)."""
    params = config.get("rope_parameters") or config.get("rope_scaling") or {}
    theta = config.get("rope_theta", params.get("rope_theta", 10000.0))
    window = config.get("sliding_window") or 0
    local = (10000.0, None)
    if isinstance(params, dict) and "full_attention" in params:  # Gemma 3, transformers 5
        full = params["full_attention"]
        theta, params = full.get("rope_theta", theta), full
        loc = config["rope_parameters"].get("sliding_attention", {})
        local = (loc.get("rope_theta", 10000.0), loc)
    elif kind == "gemma3":
        local = (config.get("rope_local_base_freq", 10000.0), None)
    types = config.get("layer_types")
    if types is None:
        if kind == "gemma2":
            types = ["sliding_attention" if i % 2 == 0 else "full_attention" for i in range(layers)]
        elif kind == "gemma3":
            pattern = config.get("sliding_window_pattern", 6)
            types = ["sliding_attention" if (i + 1) % pattern else "full_attention"
                     for i in range(layers)]
        elif kind in ("mistral", "phi3", "mixtral"):
            types = ["sliding_attention" if window else "full_attention"] * layers
        elif kind in ("qwen2", "qwen3", "qwen2_moe", "qwen3_moe") and config.get("use_sliding_window"):
            first = config.get("max_window_layers", 0)
            types = ["sliding_attention" if i >= first else "full_attention" for i in range(layers)]
        else:
            types = ["full_attention"] * layers
    out = []
    for t in types:
        if t == "sliding_attention":
            out.append((window,) + (local if kind == "gemma3" else (theta, params)))
        else:
            out.append((0, theta, params))
    return out


def moe_block(config, tensors, p, x, rtn_group):
    """A sparse MoE block's output for x [..., hidden] (transformers' Qwen3MoeSparseMoeBlock,
    Qwen2MoeSparseMoeBlock, MixtralSparseMoeBlock): softmax of the router's logits, the top-k
    experts (renormalised when norm_topk_prob; always for Mixtral), the sum of their SiLU MLPs
    weighted by those probabilities, plus Qwen2-MoE's shared expert behind sigmoid(its gate). The
    experts come per expert (the Hub's layout, AWQ or float) or as transformers 5's fused 3-D
    tensors (gate_up_proj [E, 2I, H] gate rows first, down_proj [E, H, I])."""
    mixtral = family(config) == "mixtral"
    block = "block_sparse_moe" if mixtral else "mlp"
    experts = config.get("num_experts") or config.get("num_local_experts")
    top_k = config["num_experts_per_tok"]
    renorm = True if mixtral else config.get("norm_topk_prob", False)
    names = ("w1", "w3", "w2") if mixtral else ("gate_proj", "up_proj", "down_proj")
    fused = p + "mlp.experts.gate_up_proj" in tensors
    router = p + ("mlp.gate" if fused else block + ".gate") + ".weight"

    def expert_weights(e):
        if fused:
            gate_up = tensors[p + "mlp.experts.gate_up_proj"][e].astype(np.float32)
            inter = gate_up.shape[0] // 2
            ws = [gate_up[:inter], gate_up[inter:],
                  tensors[p + "mlp.experts.down_proj"][e].astype(np.float32)]
            return [rtn(w, rtn_group) if rtn_group else w for w in ws]
        base = p + block + ".experts.%d." % e
        return [linear_weights(tensors, base + n, rtn_group)[0] for n in names]

    def silu_mlp(xs, gate, up, down):
        g = xs @ gate.T
        return (g / (1 + np.exp(-g)) * (xs @ up.T)) @ down.T

    shape = x.shape
    flat = x.reshape(-1, shape[-1])
    logits = flat @ tensors[router].astype(np.float32).T
    probs = np.exp(logits - logits.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    top = np.argsort(-probs, axis=-1, kind="stable")[:, :top_k]
    weights = np.take_along_axis(probs, top, -1)
    if renorm:
        weights = weights / weights.sum(-1, keepdims=True)
    out = np.zeros_like(flat)
    for e in range(experts):
        rows, slots = np.nonzero(top == e)
        if rows.size:
            out[rows] += silu_mlp(flat[rows], *expert_weights(e)) * weights[rows, slots][:, None]
    if p + "mlp.shared_expert_gate.weight" in tensors:
        shared = silu_mlp(flat, *[linear_weights(tensors, p + "mlp.shared_expert." + n, rtn_group)[0]
                                  for n in ("gate_proj", "up_proj", "down_proj")])
        gate_logit = flat @ tensors[p + "mlp.shared_expert_gate.weight"].astype(np.float32).T
        out += shared / (1 + np.exp(-gate_logit))
    return out.reshape(shape)


def rms_norm(x, w, eps, one_plus=False):
    x_hat = x / np.sqrt((x * x).mean(-1, keepdims=True) + eps)
    return x_hat * (1.0 + w) if one_plus else w * x_hat


def forward(config, tensors, ids, rtn_group=0):
    kind = family(config)
    gemma = kind in ("gemma2", "gemma3")
    moe = kind in ("qwen3_moe", "qwen2_moe", "mixtral")
    hidden = config["hidden_size"]
    heads = config["num_attention_heads"]
    kv_heads = config.get("num_key_value_heads", heads)
    head_dim = config.get("head_dim") or hidden // heads
    inter = config["intermediate_size"]
    eps = config.get("rms_norm_eps", 1e-6)
    dtype = config.get("dtype") or config.get("torch_dtype") or "float32"
    blocks, length = ids.shape
    layers = config["num_hidden_layers"]
    settings = layer_settings(config, kind, layers)
    scale = (config.get("query_pre_attn_scalar") if gemma else None) or head_dim
    softcap = config.get("attn_logit_softcapping") if gemma else None
    final_softcap = config.get("final_logit_softcapping") if gemma else None

    def rope_tables(theta, params):
        angles = np.arange(length, dtype=np.float32)[:, None] * rope_inv_freq(theta, params,
                                                                             head_dim)[None, :]
        return (np.cos(np.concatenate([angles, angles], -1)),
                np.sin(np.concatenate([angles, angles], -1)))

    def rope(x, cos, sin):  # [B, H, L, D]
        half = head_dim // 2
        rotated = np.concatenate([-x[..., half:], x[..., :half]], -1)
        return x * cos + rotated * sin

    def norm(x, name):
        return rms_norm(x, tensors[name].astype(np.float32), eps, one_plus=gemma)

    pos = np.arange(length)
    h = tensors["model.embed_tokens.weight"].astype(np.float32)[ids]
    if gemma:
        h = h * to_dtype(math.sqrt(hidden), dtype)
    for layer in range(layers):
        p = "model.layers.%d." % layer
        if kind == "phi3":
            lw = linear_weights(tensors, p + "self_attn.qkv_proj", rtn_group,
                                [("q", heads * head_dim), ("k", kv_heads * head_dim),
                                 ("v", kv_heads * head_dim)])
            lw.update(linear_weights(tensors, p + "mlp.gate_up_proj", rtn_group,
                                     [("gate", inter), ("up", inter)]))
            lw["o"] = linear_weights(tensors, p + "self_attn.o_proj", rtn_group)
            lw["down"] = linear_weights(tensors, p + "mlp.down_proj", rtn_group)
        else:
            lw = {n: linear_weights(tensors, p + m, rtn_group) for n, m in
                  [("q", "self_attn.q_proj"), ("k", "self_attn.k_proj"), ("v", "self_attn.v_proj"),
                   ("o", "self_attn.o_proj")] + ([] if moe else [
                   ("gate", "mlp.gate_proj"), ("up", "mlp.up_proj"), ("down", "mlp.down_proj")])}

        def lin(x, name):
            w, b = lw[name]
            y = x @ w.T
            return y if b is None else y + b

        window, theta, params = settings[layer]
        cos, sin = rope_tables(theta, params)
        x = norm(h, p + "input_layernorm.weight")
        q = lin(x, "q").reshape(blocks, length, heads, head_dim).transpose(0, 2, 1, 3)
        k = lin(x, "k").reshape(blocks, length, kv_heads, head_dim).transpose(0, 2, 1, 3)
        v = lin(x, "v").reshape(blocks, length, kv_heads, head_dim).transpose(0, 2, 1, 3)
        if p + "self_attn.q_norm.weight" in tensors:
            q = norm(q, p + "self_attn.q_norm.weight")
            k = norm(k, p + "self_attn.k_norm.weight")
        q, k = rope(q, cos, sin), rope(k, cos, sin)
        rep = heads // kv_heads
        k = np.repeat(k, rep, axis=1)
        v = np.repeat(v, rep, axis=1)
        scores = q @ k.transpose(0, 1, 3, 2) / math.sqrt(scale)
        if softcap:
            scores = np.tanh(scores / softcap) * softcap
        allowed = pos[None, :] <= pos[:, None]
        if window:
            allowed &= pos[:, None] - pos[None, :] < window
        scores = np.where(allowed, scores, -np.inf)
        scores = np.exp(scores - scores.max(-1, keepdims=True))
        attn = (scores / scores.sum(-1, keepdims=True)) @ v
        attn = attn.transpose(0, 2, 1, 3).reshape(blocks, length, heads * head_dim)
        attn_out = lin(attn, "o")
        if gemma:
            h = h + norm(attn_out, p + "post_attention_layernorm.weight")
            x = norm(h, p + "pre_feedforward_layernorm.weight")
        else:
            h = h + attn_out
            x = norm(h, p + "post_attention_layernorm.weight")
        if moe:
            h = h + moe_block(config, tensors, p, x, rtn_group)
            continue
        g = lin(x, "gate")
        if gemma:
            act = 0.5 * g * (1 + np.tanh(math.sqrt(2 / math.pi) * (g + 0.044715 * g ** 3)))
        else:
            act = g / (1 + np.exp(-g))
        mlp_out = lin(act * lin(x, "up"), "down")
        h = h + (norm(mlp_out, p + "post_feedforward_layernorm.weight") if gemma else mlp_out)
    h = norm(h, "model.norm.weight")
    head = tensors.get("lm_head.weight", tensors["model.embed_tokens.weight"]).astype(np.float32)
    logits = h @ head.T
    if final_softcap:
        logits = np.tanh(logits / final_softcap) * final_softcap
    return logits


def mean_nll(logits, ids):
    """Mean negative log-likelihood of ids[:, t + 1] given the logits at t."""
    z = logits[:, :-1, :].astype(np.float64)
    z = z - z.max(-1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(-1, keepdims=True))
    target = ids[:, 1:]
    return float(-np.take_along_axis(logp, target[..., None], -1).mean())


def read_rows(path, rows):
    out = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            out.append(json.loads(line)["input_ids"])
            if len(out) == rows:
                break
    return np.array(out, dtype=np.int64)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--float", required=True, help="float model directory")
    ap.add_argument("--quantized", help="AWQ GEMM checkpoint directory")
    ap.add_argument("--rtn", type=int, default=0, help="group size of a round-to-nearest baseline")
    ap.add_argument("--calib", required=True, help='jsonl with {"input_ids": [...]} rows')
    ap.add_argument("--rows", type=int, default=4)
    args = ap.parse_args()
    ids = read_rows(args.calib, args.rows)
    config, float_tensors = read_model_dir(args.float)
    ref = forward(config, float_tensors, ids)
    if args.quantized:
        qconfig, qtensors = read_model_dir(args.quantized)
        qc = qconfig.get("quantization_config", {})
        if qc.get("quant_method") != "awq" or qc.get("version") != "gemm":
            sys.exit("quantization_config is not AWQ GEMM: %r" % qc)
        out = forward(qconfig, qtensors, ids)
    else:
        out = forward(config, float_tensors, ids, rtn_group=args.rtn)
    err = float(np.linalg.norm(out - ref) / np.linalg.norm(ref))
    print(json.dumps({"relative_logits_error": err, "float_nll": mean_nll(ref, ids),
                      "rows": int(ids.shape[0])}))


if __name__ == "__main__":
    main()
