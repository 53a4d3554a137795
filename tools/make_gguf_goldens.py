#!/usr/bin/env python3
"""Write tiny random Llama GGUFs in several weight dtypes and record llama.cpp goldens.

Produces (committed fixtures, see docs/GOLDENS.md), in tests/data/gguf_tiny/:
    model_<dtype>.gguf     dtype in f32, f16, bf16, q8_0, q4_0, q4_1
    golden_<dtype>.json    tokens, greedy continuation (8 tokens), llama.cpp version, settings,
                           error of llama.cpp vs a float64 numpy reference
    logits_<dtype>.f32     float32 little-endian [16][320]: llama.cpp logits of every position

Model: general.architecture=llama, vocab 320 (synthetic SPM vocab: <unk>, <s>, </s>, 256 byte
tokens <0x00>..<0xFF>, 61 normal pieces with scores), hidden 64, ffn 160, 2 layers, 8 heads,
4 KV heads (GQA), head_dim 8 (rope.dimension_count 8), rope theta 10000, rms eps 1e-5,
context 256. All files share the same underlying random float weights; 2D weights
(token_embd, attn_q/k/v/output, ffn_gate/up/down, output) are stored in <dtype> via gguf-py's
quantize functions, norm weights are F32 (as llama.cpp does).
Weights are written directly in GGUF layout: llama.cpp's llama arch uses adjacent-pair RoPE
(GGML_ROPE_TYPE_NORM: pairs (x[2i], x[2i+1])), there is no HF->GGUF permutation involved.

Goldens: llama-cpp-python, Llama(model_path, logits_all=True, n_ctx=64, n_threads=2, seed=0,
n_batch=64, flash_attn=False, type_k=type_v=F32 (KV cache in f32, llama.cpp's default is f16)),
with llama_model_params.use_extra_bufts=False (no weight repacking / AMX: plain ggml-cpu path;
the AMX path segfaults on these tiny models on AMX-capable Xeons),
eval(16 tokens), scores -> logits; then 8 greedy tokens (argmax, KV-cached, one token per eval).

Run (after `bash tools/setup_venv.sh`):
    .venv-tools/bin/python tools/make_gguf_goldens.py [--out DIR] [--dtypes f32,q4_0,...]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import gguf

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gguf_common import DTYPES, add_weight, add_synthetic_tokenizer, open_llama, reference_forward, act_rounding  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
SEED = 4321
HP = dict(n_vocab=320, n_embd=64, n_ff=160, n_layer=2, n_head=8, n_head_kv=4, head_dim=8,
          n_ctx_train=256, eps=1e-5, rope_theta=10000.0)
N_PROMPT = 16
N_GREEDY = 8
TOK_TEXT = "the cat and Zoé!"  # exercises merges and byte fallback (Z, é, !)

QUANT_NOTE = (
    "llama.cpp's CPU backend converts the activation operand of each weight matmul to the weight "
    "type's vec_dot type: Q8_0/Q4_0 -> activations quantised to Q8_0 per 32-block, Q4_1 -> Q8_1 "
    "(same values, plus s = fp16(d*sum(q)) per block), F16 -> activations rounded to F16, BF16 -> "
    "rounded to BF16. Only F32 is a float32 x float32 matmul. An implementation that dequantises "
    "weights and multiplies with float32 activations differs from these logits by "
    "ref_vs_llamacpp_max_abs_diff (up to ~1 logit for the 4/8-bit types here): use looser tolerances, "
    "or compare greedy tokens/top-k. ref_act_emulated_vs_llamacpp_max_abs_diff is the residual "
    "after emulating the activation rounding in the float64 reference (tools/gguf_common.act_rounding)."
)


def make_float_weights(seed: int) -> dict:
    rng = np.random.default_rng(seed)
    E, F, V = HP["n_embd"], HP["n_ff"], HP["n_vocab"]
    H, KV, D = HP["n_head"], HP["n_head_kv"], HP["head_dim"]

    def proj(rows, cols):
        return (0.5 * (64.0 / cols) ** 0.5 * rng.standard_normal((rows, cols))).astype(np.float32)

    W = {"token_embd.weight": rng.standard_normal((V, E)).astype(np.float32)}
    for l in range(HP["n_layer"]):
        p = f"blk.{l}."
        W[p + "attn_norm.weight"] = (1 + 0.2 * rng.standard_normal(E)).astype(np.float32)
        W[p + "attn_q.weight"] = proj(H * D, E)
        W[p + "attn_k.weight"] = proj(KV * D, E)
        W[p + "attn_v.weight"] = proj(KV * D, E)
        W[p + "attn_output.weight"] = proj(E, H * D)
        W[p + "ffn_norm.weight"] = (1 + 0.2 * rng.standard_normal(E)).astype(np.float32)
        W[p + "ffn_gate.weight"] = proj(F, E)
        W[p + "ffn_up.weight"] = proj(F, E)
        W[p + "ffn_down.weight"] = proj(E, F)
    W["output_norm.weight"] = (1 + 0.2 * rng.standard_normal(E)).astype(np.float32)
    W["output.weight"] = (0.3 * rng.standard_normal((V, E))).astype(np.float32)
    return W


def write_gguf(path: Path, W: dict, dtype: str) -> dict:
    """Writes the GGUF; returns the dequantised weights as stored."""
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_name(f"tessera-tiny-llama-{dtype}")
    w.add_context_length(HP["n_ctx_train"])
    w.add_embedding_length(HP["n_embd"])
    w.add_block_count(HP["n_layer"])
    w.add_feed_forward_length(HP["n_ff"])
    w.add_head_count(HP["n_head"])
    w.add_head_count_kv(HP["n_head_kv"])
    w.add_rope_dimension_count(HP["head_dim"])
    w.add_rope_freq_base(HP["rope_theta"])
    w.add_layer_norm_rms_eps(HP["eps"])
    w.add_vocab_size(HP["n_vocab"])
    w.add_file_type(DTYPES[dtype][1])
    add_synthetic_tokenizer(w)
    stored = {}
    for name, arr in W.items():
        if arr.ndim == 1:
            w.add_tensor(name, arr)  # norms stay F32
            stored[name] = arr
        else:
            stored[name] = add_weight(w, name, arr, dtype)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return stored


def make_tokens(seed: int) -> list[int]:
    rng = np.random.default_rng(seed)
    t = rng.integers(3, HP["n_vocab"], size=N_PROMPT).tolist()
    t[0] = 1
    return [int(x) for x in t]


def llamacpp_golden(path: Path, tokens: list[int]):
    import llama_cpp

    llm = open_llama(str(path), use_extra_bufts=False, logits_all=True, n_ctx=64, n_batch=64, n_ubatch=64,
                n_threads=2, n_threads_batch=2, seed=0, verbose=False, flash_attn=False,
                type_k=llama_cpp.GGML_TYPE_F32, type_v=llama_cpp.GGML_TYPE_F32)
    assert llm.n_vocab() == HP["n_vocab"]
    llm.reset()
    llm.eval(tokens)
    logits = np.array(llm.scores[: len(tokens)], dtype=np.float32).copy()
    greedy = []
    nxt = int(np.argmax(logits[-1]))
    for _ in range(N_GREEDY):
        greedy.append(nxt)
        llm.eval([nxt])
        nxt = int(np.argmax(llm.scores[llm.n_tokens - 1]))
    # sanity: tokenizer of the synthetic vocab loads and works
    tok_check = llm.tokenize(TOK_TEXT.encode("utf-8"), add_bos=True)
    del llm
    return logits, greedy, tok_check


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=REPO / "tests" / "data" / "gguf_tiny")
    ap.add_argument("--dtypes", default=",".join(DTYPES))
    a = ap.parse_args()
    import llama_cpp

    a.out.mkdir(parents=True, exist_ok=True)
    W = make_float_weights(SEED)
    tokens = make_tokens(SEED + 1)
    for dtype in a.dtypes.split(","):
        path = a.out / f"model_{dtype}.gguf"
        stored = write_gguf(path, W, dtype)
        # read back with gguf-py
        r = gguf.GGUFReader(str(path))
        kinds = {t.name: t.tensor_type.name for t in r.tensors}
        assert len(kinds) == len(W), kinds
        for t in r.tensors:
            want = "F32" if len(t.shape) == 1 or t.n_elements == HP["n_embd"] else DTYPES[dtype][0].name
            assert t.tensor_type.name == want, (t.name, t.tensor_type.name, want)
        assert r.fields["general.architecture"].contents() == "llama"

        logits, greedy, tok_check = llamacpp_golden(path, tokens)
        ref = reference_forward(stored, HP, tokens)
        diff = float(np.abs(ref - logits).max())
        ref_act = reference_forward(stored, HP, tokens, act=act_rounding(dtype))
        diff_act = float(np.abs(ref_act - logits).max())
        ref_greedy0 = int(np.argmax(ref[-1]))
        logits.astype("<f4").tofile(a.out / f"logits_{dtype}.f32")
        g = {
            "description": f"tiny random llama GGUF, weights {dtype.upper()}, goldens from llama.cpp",
            "producer": "tools/make_gguf_goldens.py (gguf-py writer + llama.cpp via llama-cpp-python)",
            "model": f"model_{dtype}.gguf",
            "weight_dtype": dtype.upper(),
            "tensor_types": kinds,
            "hparams": HP,
            "rope_layout": "adjacent pairs (x[2i], x[2i+1]) - llama.cpp LLAMA_ROPE_TYPE_NORM",
            "versions": {"llama_cpp_python": llama_cpp.__version__, "gguf": _gguf_version(),
                         "numpy": np.__version__},
            "llama_cpp_system_info": llama_cpp.llama_print_system_info().decode().strip(),
            "llama_cpp_settings": {"logits_all": True, "n_ctx": 64, "n_batch": 64, "n_threads": 2,
                                   "seed": 0, "flash_attn": False, "type_k": "F32", "type_v": "F32",
                                   "use_extra_bufts": False,
                                   "prompt_eval": "single batch of all 16 tokens"},
            "tokens": tokens,
            "logits": {"file": f"logits_{dtype}.f32", "dtype": "float32", "byte_order": "little",
                       "shape": [len(tokens), HP["n_vocab"]],
                       "layout": "row-major [position][vocab]"},
            "greedy": {"method": "argmax of last logits, then eval one token at a time (KV cache)",
                       "n": N_GREEDY, "tokens": greedy},
            "ref_vs_llamacpp_max_abs_diff": diff,
            "ref_act_emulated_vs_llamacpp_max_abs_diff": diff_act,
            "ref_note": "float64 numpy forward (tools/gguf_common.reference_forward) on the dequantised "
                        "stored weights with float activations; logits absmax "
                        f"{float(np.abs(ref).max()):.3f}",
            "quantization_note": QUANT_NOTE,
            "tokenizer_check": {"text": TOK_TEXT, "add_bos": True, "llama_cpp_ids": tok_check},
        }
        (a.out / f"golden_{dtype}.json").write_text(json.dumps(g, indent=1) + "\n")
        print(f"[{dtype}] {path.stat().st_size} bytes, greedy={greedy}, |ref-llama.cpp|max={diff:.3g}, "
              f"|ref(act emulated)-llama.cpp|max={diff_act:.3g}, ref argmax(last)={ref_greedy0}, tok(TOK_TEXT)={tok_check}")


def _gguf_version():
    try:
        from importlib.metadata import version
        return version("gguf")
    except Exception:
        return "unknown"


if __name__ == "__main__":
    main()
