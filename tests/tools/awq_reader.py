#!/usr/bin/python3
"""Independent reader of quantd's AWQ checkpoints, written from the project's output-format
specification (spec/output-format.md of its reference material) and docs/compressed-tensors.md
(compressed-tensors' pack_quantized compressor, vLLM's WNA16 scheme).

Loads a model directory (float, AutoAWQ GEMM or compressed-tensors pack-quantized W4A16).
GEMM: unpacks qweight/qzeros with the reverse nibble order [0,4,1,5,2,6,3,7] and dequantizes
W^T[k, n] = (q - z) * s in float16. compressed-tensors: unpacks weight_packed [out, in/8] along the
input and weight_zero_point [out/8, groups] along the output, nibble i = bits 4i..4i+3, values
stored with a +8 offset (signed q, z in [-8, 7]); W[n, k] = (q - z) * s in the scale dtype
(symmetric: z = 0 after the offset, i.e. stored - 8). Then it runs the float forward pass of a
Llama / Qwen2 / Qwen3 / Mistral decoder in float32 numpy and compares logits:

  awq_reader.py --float FLOAT_DIR --quantized OUT_DIR --calib calib.jsonl --rows 4
  awq_reader.py --float FLOAT_DIR --rtn 128 --calib calib.jsonl --rows 4   (round-to-nearest)

prints one JSON object: {"relative_logits_error": ‖logits − logits_float‖ / ‖logits_float‖, ...}.
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
DTYPES = {"F16": np.float16, "F32": np.float32, "I32": np.int32, "I64": np.int64,
          "BF16": np.uint16}


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


def round_bf16(x):
    """float32 -> nearest bfloat16 (ties to even), returned as float32."""
    bits = x.astype(np.float32).view(np.uint32)
    bits = (bits + np.uint32(0x7FFF) + ((bits >> np.uint32(16)) & np.uint32(1))) & np.uint32(0xFFFF0000)
    return bits.view(np.float32)


def unpack_natural(packed, axis):
    """int32 words holding 8 nibbles (nibble i = bits 4i..4i+3, element 8j+i) -> values 0..15,
    unpacked along `axis` (1: [rows, cols/8] -> [rows, cols]; 0: [rows/8, cols] -> [rows, cols])."""
    words = packed.view(np.uint32)
    if axis == 0:
        return unpack_natural(packed.T.copy(), 1).T.copy()
    rows, cols = words.shape
    values = np.empty((rows, cols * 8), dtype=np.int32)
    for i in range(8):
        values[:, i::8] = (words >> np.uint32(4 * i)) & np.uint32(0xF)
    return values


def dequantize_compressed(tensors, prefix, symmetric, scale_is_bf16):
    """compressed-tensors pack-quantized -> float weight [out, in]."""
    out, inp = (int(v) for v in tensors[prefix + ".weight_shape"])
    q = unpack_natural(tensors[prefix + ".weight_packed"], 1)[:, :inp] - 8   # signed codes
    scale = tensors[prefix + ".weight_scale"].astype(np.float32)             # [out, groups]
    groups = scale.shape[1]
    if symmetric:
        z = np.zeros((out, groups), dtype=np.int32)
    else:
        z = unpack_natural(tensors[prefix + ".weight_zero_point"], 0)[:out] - 8
    group = inp // groups
    w = (q - np.repeat(z, group, axis=1)).astype(np.float32) * np.repeat(scale, group, axis=1)
    # the kernels compute (q - z) * s in the scale dtype
    w = round_bf16(w) if scale_is_bf16 else w.astype(np.float16).astype(np.float32)
    return w


def rtn(weight, group):
    """Round-to-nearest 4-bit asymmetric min-max group quantization (no AWQ), float16."""
    w = weight.astype(np.float16).astype(np.float32).reshape(-1, group)
    mx, mn = w.max(1, keepdims=True), w.min(1, keepdims=True)
    scale = np.maximum(mx - mn, 1e-5) / 15
    zero = np.clip(-np.round(mn / scale), 0, 15)
    q = np.clip(np.round(w / scale) + zero, 0, 15)
    return ((q - zero) * scale).reshape(weight.shape).astype(np.float32)


LINEARS = ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
           "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"]


def linear_weights(tensors, prefix, rtn_group, ct=None):
    if prefix + ".qweight" in tensors:
        w = dequantize(tensors[prefix + ".qweight"], tensors[prefix + ".qzeros"],
                       tensors[prefix + ".scales"])
    elif prefix + ".weight_packed" in tensors:
        w = dequantize_compressed(tensors, prefix, ct["symmetric"], ct["bf16"])
    else:
        w = tensors[prefix + ".weight"].astype(np.float32)
        if rtn_group:
            w = rtn(w, rtn_group)
    b = tensors.get(prefix + ".bias")
    return w, (None if b is None else b.astype(np.float32))


def rope_inv_freq(config, head_dim):
    params = config.get("rope_parameters") or config.get("rope_scaling") or {}
    theta = config.get("rope_theta", params.get("rope_theta", 10000.0))
    inv = 1.0 / (theta ** (np.arange(0, head_dim, 2, dtype=np.float64) / head_dim))
    kind = params.get("rope_type", params.get("type", "default"))
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


def rms_norm(x, w, eps):
    return w * (x / np.sqrt((x * x).mean(-1, keepdims=True) + eps))


def compressed_tensors_scheme(config, tensors):
    """The W4A16 scheme of a compressed-tensors config (None for other checkpoints)."""
    qc = config.get("quantization_config") or {}
    if qc.get("quant_method") != "compressed-tensors":
        return None
    if qc.get("format") != "pack-quantized":
        sys.exit("compressed-tensors format is not pack-quantized: %r" % qc.get("format"))
    groups = list(qc["config_groups"].values())
    if len(groups) != 1 or groups[0]["targets"] != ["Linear"] or groups[0].get("input_activations"):
        sys.exit("expected one W4A16 config group targeting Linear: %r" % qc["config_groups"])
    w = groups[0]["weights"]
    if w["num_bits"] != 4 or w["type"] != "int" or w.get("dynamic"):
        sys.exit("expected static 4-bit int weights: %r" % w)
    if w["strategy"] == "group":
        assert w["group_size"] in (32, 64, 128), w
    elif w["strategy"] != "channel":
        sys.exit("unsupported strategy %r" % w["strategy"])
    scale = next(v for k, v in tensors.items() if k.endswith(".weight_scale"))
    # read_safetensors widens BF16 to float32; quantd writes F16 or BF16 scales
    return {"symmetric": bool(w["symmetric"]), "bf16": scale.dtype == np.float32,
            "group_size": w.get("group_size"), "ignore": qc.get("ignore", [])}


def forward(config, tensors, ids, rtn_group=0):
    hidden = config["hidden_size"]
    heads = config["num_attention_heads"]
    kv_heads = config.get("num_key_value_heads", heads)
    head_dim = config.get("head_dim") or hidden // heads
    eps = config.get("rms_norm_eps", 1e-6)
    blocks, length = ids.shape
    ct = compressed_tensors_scheme(config, tensors)
    inv = rope_inv_freq(config, head_dim)
    angles = np.arange(length, dtype=np.float32)[:, None] * inv[None, :]
    cos = np.cos(np.concatenate([angles, angles], -1))
    sin = np.sin(np.concatenate([angles, angles], -1))

    def rope(x):  # [B, H, L, D]
        half = head_dim // 2
        rotated = np.concatenate([-x[..., half:], x[..., :half]], -1)
        return x * cos + rotated * sin

    mask = np.triu(np.full((length, length), -np.inf, dtype=np.float32), 1)
    h = tensors["model.embed_tokens.weight"].astype(np.float32)[ids]
    for layer in range(config["num_hidden_layers"]):
        p = "model.layers.%d." % layer
        lw = {n: linear_weights(tensors, p + n, rtn_group, ct) for n in LINEARS}

        def lin(x, name):
            w, b = lw[name]
            y = x @ w.T
            return y if b is None else y + b

        x = rms_norm(h, tensors[p + "input_layernorm.weight"].astype(np.float32), eps)
        q = lin(x, "self_attn.q_proj").reshape(blocks, length, heads, head_dim).transpose(0, 2, 1, 3)
        k = lin(x, "self_attn.k_proj").reshape(blocks, length, kv_heads, head_dim).transpose(0, 2, 1, 3)
        v = lin(x, "self_attn.v_proj").reshape(blocks, length, kv_heads, head_dim).transpose(0, 2, 1, 3)
        if p + "self_attn.q_norm.weight" in tensors:
            q = rms_norm(q, tensors[p + "self_attn.q_norm.weight"].astype(np.float32), eps)
            k = rms_norm(k, tensors[p + "self_attn.k_norm.weight"].astype(np.float32), eps)
        q, k = rope(q), rope(k)
        rep = heads // kv_heads
        k = np.repeat(k, rep, axis=1)
        v = np.repeat(v, rep, axis=1)
        scores = q @ k.transpose(0, 1, 3, 2) / math.sqrt(head_dim) + mask
        scores = np.exp(scores - scores.max(-1, keepdims=True))
        attn = (scores / scores.sum(-1, keepdims=True)) @ v
        attn = attn.transpose(0, 2, 1, 3).reshape(blocks, length, heads * head_dim)
        h = h + lin(attn, "self_attn.o_proj")
        x = rms_norm(h, tensors[p + "post_attention_layernorm.weight"].astype(np.float32), eps)
        g = lin(x, "mlp.gate_proj")
        h = h + lin(g / (1 + np.exp(-g)) * lin(x, "mlp.up_proj"), "mlp.down_proj")
    h = rms_norm(h, tensors["model.norm.weight"].astype(np.float32), eps)
    head = tensors.get("lm_head.weight", tensors["model.embed_tokens.weight"]).astype(np.float32)
    return h @ head.T


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
        gemm = qc.get("quant_method") == "awq" and qc.get("version") == "gemm"
        if not gemm and qc.get("quant_method") != "compressed-tensors":
            sys.exit("quantization_config is neither AWQ GEMM nor compressed-tensors: %r" % qc)
        out = forward(qconfig, qtensors, ids)
    else:
        out = forward(config, float_tensors, ids, rtn_group=args.rtn)
    err = float(np.linalg.norm(out - ref) / np.linalg.norm(ref))
    print(json.dumps({"relative_logits_error": err, "rows": int(ids.shape[0])}))


if __name__ == "__main__":
    main()
