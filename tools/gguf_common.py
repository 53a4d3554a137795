"""Shared helpers for the GGUF tools (make_gguf_goldens.py, make_random_gguf.py).

Not a script. Provides: dtype table, tensor writing with gguf-py quantisation, a synthetic
320-token SentencePiece-style vocab, copying of a real tokenizer from another GGUF, and a
numpy float64 reference forward pass of the llama.cpp "llama" architecture (adjacent-pair
RoPE, as GGML_ROPE_TYPE_NORM) used to sanity-check llama.cpp's goldens.
"""
from __future__ import annotations

import numpy as np
import gguf
from gguf import GGMLQuantizationType as QT

# name -> (ggml type, general.file_type (LlamaFileType))
DTYPES = {
    "f32": (QT.F32, 0),
    "f16": (QT.F16, 1),
    "bf16": (QT.BF16, 32),
    "q8_0": (QT.Q8_0, 7),
    "q4_0": (QT.Q4_0, 2),
    "q4_1": (QT.Q4_1, 3),
}


def add_weight(w: gguf.GGUFWriter, name: str, arr: np.ndarray, dtype: str) -> np.ndarray:
    """Add a 2D weight (numpy shape [rows=ne1, cols=ne0]) in `dtype`; returns the
    dequantised float32 values actually stored (for reference computations)."""
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    qt = DTYPES[dtype][0]
    if qt == QT.F32:
        w.add_tensor(name, arr)
        return arr
    if qt == QT.F16:
        a16 = arr.astype(np.float16)
        w.add_tensor(name, a16)
        return a16.astype(np.float32)
    q = gguf.quants.quantize(arr, qt)
    w.add_tensor(name, q, raw_shape=q.shape, raw_dtype=qt)
    return gguf.quants.dequantize(q, qt).astype(np.float32).reshape(arr.shape)


def synthetic_vocab():
    """320 tokens: <unk>, <s>, </s>, 256 byte tokens <0x00>..<0xFF>, 61 normal pieces."""
    toks, scores, types = [], [], []
    T = gguf.TokenType

    def add(t, s, ty):
        toks.append(t)
        scores.append(float(s))
        types.append(int(ty))

    add("<unk>", 0.0, T.UNKNOWN)
    add("<s>", 0.0, T.CONTROL)
    add("</s>", 0.0, T.CONTROL)
    for b in range(256):
        add(f"<0x{b:02X}>", 0.0, T.BYTE)
    pieces = ["\u2581"] + ["\u2581" + c for c in "abcdefghijklmnopqrstuvwxyz"] \
        + list("abcdefghijklmnopqrstuvwxyz") \
        + ["th", "\u2581th", "\u2581the", "in", "er", "an", "\u2581an", "\u2581and"]
    assert len(pieces) == 61 and len(set(pieces)) == 61
    # SentencePiece-BPE-like scores (merge priority: higher merges first). Every multi-char piece is
    # reachable by pairwise merges of existing pieces (e.g. ▁t+h -> ▁th, ▁th+e -> ▁the).
    for i, p in enumerate(pieces):
        s = -float(i) if len(p) > 1 else -100.0 - i
        add(p, s, T.NORMAL)
    assert len(toks) == 320
    return toks, scores, types


def add_synthetic_tokenizer(w: gguf.GGUFWriter):
    toks, scores, types = synthetic_vocab()
    w.add_tokenizer_model("llama")
    w.add_tokenizer_pre("default")
    w.add_token_list(toks)
    w.add_token_scores(scores)
    w.add_token_types(types)
    w.add_unk_token_id(0)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_add_bos_token(True)
    w.add_add_eos_token(False)
    return len(toks)


def copy_tokenizer(w: gguf.GGUFWriter, src_path: str) -> int:
    """Copy every tokenizer.* key from another GGUF (e.g. the Llama SPM vocab-only GGUF)."""
    r = gguf.GGUFReader(src_path)
    n_vocab = None
    for name, field in r.fields.items():
        if not name.startswith("tokenizer."):
            continue
        vtype = field.types[0]
        if vtype == gguf.GGUFValueType.ARRAY:
            etype = field.types[-1]
            if etype == gguf.GGUFValueType.STRING:
                val = [bytes(field.parts[i]) for i in field.data]
            else:
                val = [field.parts[i].tolist()[0] for i in field.data]
            w.add_key_value(name, val, vtype, sub_type=etype)
            if name == "tokenizer.ggml.tokens":
                n_vocab = len(val)
        elif vtype == gguf.GGUFValueType.STRING:
            w.add_key_value(name, bytes(field.parts[field.data[0]]).decode("utf-8"), vtype)
        else:
            w.add_key_value(name, field.parts[field.data[0]].tolist()[0], vtype)
    assert n_vocab is not None, "source GGUF has no tokenizer.ggml.tokens"
    return n_vocab


# ---------------------------------------------------------------- numpy reference forward
def _rms(x, g, eps):
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * g


def rope_adjacent(x, pos, theta, n_rot):
    """llama.cpp GGML_ROPE_TYPE_NORM: rotate adjacent pairs (x[2i], x[2i+1]).
    x: [T, H, D]."""
    T, H, D = x.shape
    i = np.arange(n_rot // 2, dtype=np.float64)
    inv = theta ** (-2.0 * i / n_rot)
    ang = pos[:, None].astype(np.float64) * inv[None, :]  # [T, n_rot/2]
    c, s = np.cos(ang)[:, None, :], np.sin(ang)[:, None, :]
    y = x.copy()
    x0, x1 = x[..., 0:n_rot:2], x[..., 1:n_rot:2]
    y[..., 0:n_rot:2] = x0 * c - x1 * s
    y[..., 1:n_rot:2] = x0 * s + x1 * c
    return y


def act_rounding(dtype: str):
    """Emulates what llama.cpp's CPU backend does to the activation operand of a weight matmul
    (vec_dot_type): F32 -> nothing, F16/BF16 -> round to that type, quantised -> Q8_0 (Q4_1's
    Q8_1 has the same quantised values)."""
    if dtype == "f32":
        return None
    if dtype == "f16":
        return lambda x: x.astype(np.float32).astype(np.float16).astype(np.float64)
    if dtype == "bf16":
        return lambda x: gguf.quants.dequantize(gguf.quants.quantize(x.astype(np.float32), QT.BF16),
                                                QT.BF16).astype(np.float64)
    return lambda x: gguf.quants.dequantize(gguf.quants.quantize(x.astype(np.float32), QT.Q8_0),
                                            QT.Q8_0).astype(np.float64).reshape(x.shape)


def reference_forward(W: dict, hp: dict, tokens: list[int], act=None) -> np.ndarray:
    """float64 forward of the llama graph from (dequantised) weights; returns logits [T, V].
    act: optional function applied to the activation operand of every weight matmul (see
    act_rounding) to emulate llama.cpp's activation conversion."""
    f = lambda k: W[k].astype(np.float64)
    if act is None:
        act = lambda x: x
    T = len(tokens)
    H, KV, D = hp["n_head"], hp["n_head_kv"], hp["head_dim"]
    eps, theta = hp["eps"], hp["rope_theta"]
    x = f("token_embd.weight")[tokens]
    pos = np.arange(T)
    mask = np.triu(np.full((T, T), -np.inf), 1)
    for l in range(hp["n_layer"]):
        p = f"blk.{l}."
        h = act(_rms(x, f(p + "attn_norm.weight"), eps))
        q = (h @ f(p + "attn_q.weight").T).reshape(T, H, D)
        k = (h @ f(p + "attn_k.weight").T).reshape(T, KV, D)
        v = (h @ f(p + "attn_v.weight").T).reshape(T, KV, D)
        q, k = rope_adjacent(q, pos, theta, D), rope_adjacent(k, pos, theta, D)
        o = np.zeros((T, H, D))
        for hh in range(H):
            kh = hh // (H // KV)
            sc = q[:, hh, :] @ k[:, kh, :].T / np.sqrt(D) + mask
            sc = np.exp(sc - sc.max(-1, keepdims=True))
            sc /= sc.sum(-1, keepdims=True)
            o[:, hh, :] = sc @ v[:, kh, :]
        x = x + act(o.reshape(T, H * D)) @ f(p + "attn_output.weight").T
        h = act(_rms(x, f(p + "ffn_norm.weight"), eps))
        b = h @ f(p + "ffn_up.weight").T
        if p + "ffn_gate.weight" in W:  # SwiGLU
            a = h @ f(p + "ffn_gate.weight").T
            x = x + act((a / (1 + np.exp(-a))) * b) @ f(p + "ffn_down.weight").T
        else:  # plain SiLU FFN: down(silu(up x))
            x = x + act(b / (1 + np.exp(-b))) @ f(p + "ffn_down.weight").T
    x = act(_rms(x, f("output_norm.weight"), eps))
    out = W.get("output.weight", W["token_embd.weight"]).astype(np.float64)
    return x @ out.T


# ---------------------------------------------------------------- llama.cpp helpers
def open_llama(model_path: str, use_extra_bufts: bool = False, **kw):
    """llama_cpp.Llama(model_path, **kw), optionally with llama_model_params.use_extra_bufts off.

    use_extra_bufts=False disables llama.cpp's CPU "extra" buffer types (weight repacking such as
    Q4_0 -> Q4_0x8 and the Intel AMX backend), so matmuls run through the plain ggml-cpu
    vec_dot path. Needed for goldens: with llama-cpp-python 0.3.36 on an AMX-capable Xeon
    the AMX mul_mat segfaults on the tiny (n_embd 64) quantised models, and the plain path is
    the portable reference anyway.
    """
    import llama_cpp.llama_cpp as LL
    from llama_cpp import Llama

    orig = LL.llama_model_default_params

    def patched():
        p = orig()
        p.use_extra_bufts = use_extra_bufts
        return p

    LL.llama_model_default_params = patched
    try:
        return Llama(model_path=model_path, **kw)
    finally:
        LL.llama_model_default_params = orig


def last_logits(llm) -> np.ndarray:
    """Logits of the last token of the most recent llm.eval() (copy, float32).
    Works with logits_all=False, where llama-cpp-python 0.3.x no longer fills llm.scores."""
    import llama_cpp

    ptr = llama_cpp.llama_get_logits_ith(llm._ctx.ctx, -1)
    return np.ctypeslib.as_array(ptr, shape=(llm.n_vocab(),)).astype(np.float32).copy()
