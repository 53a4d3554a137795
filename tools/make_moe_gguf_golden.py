#!/usr/bin/env python3
"""A tiny random MoE GGUF in llama.cpp's layout + llama.cpp goldens (docs/MOE.md).

Produces tests/data/gguf_tiny_moe/: model_<dtype>.gguf, golden_<dtype>.json,
logits_<dtype>.f32 ([16][320] float32: llama.cpp's logits at every prompt position) and
8 greedy tokens, for dtype f32 and q8_0 (2-D and 3-D weights in the dtype, norms F32).

Model: the attention, norms, embedding, head and synthetic tokenizer of
tools/make_gguf_goldens.py (general.architecture=llama, vocab 320, dim 64, 2 layers,
8 heads / 4 KV heads), with every FFN replaced by llama.cpp's MoE tensors:
    blk.N.ffn_gate_inp.weight   numpy [E=8][64]       (ne = {64, 8})
    blk.N.ffn_gate_exps.weight  numpy [8][32][64]     (ne = {64, 32, 8})
    blk.N.ffn_up_exps.weight    numpy [8][32][64]
    blk.N.ffn_down_exps.weight  numpy [8][64][32]     (ne = {32, 64, 8})
llama.expert_count 8, llama.expert_used_count 2, llama.feed_forward_length 32 (llama.cpp's
llama graph sizes the experts from it); its llama graph takes softmax -> top-2 ->
renormalised gates (Mixtral). The router has std 1 so the choices are far from ties.

    /work/main/.venv-tools/bin/python tools/make_moe_gguf_golden.py
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import gguf

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_gguf_goldens as base  # noqa: E402

E, K, FF = 8, 2, 32


def main():
    import llama_cpp

    out = base.REPO / "tests" / "data" / "gguf_tiny_moe"
    out.mkdir(parents=True, exist_ok=True)
    W = base.make_float_weights(base.SEED)
    rng = np.random.default_rng(base.SEED + 7)
    D = base.HP["n_embd"]
    for l in range(base.HP["n_layer"]):
        p = f"blk.{l}."
        for k in ("ffn_gate.weight", "ffn_up.weight", "ffn_down.weight"):
            del W[p + k]
        W[p + "ffn_gate_inp.weight"] = rng.standard_normal((E, D)).astype(np.float32)
        W[p + "ffn_gate_exps.weight"] = (0.5 * (64.0 / D) ** 0.5 * rng.standard_normal((E, FF, D))).astype(np.float32)
        W[p + "ffn_up_exps.weight"] = (0.5 * (64.0 / D) ** 0.5 * rng.standard_normal((E, FF, D))).astype(np.float32)
        W[p + "ffn_down_exps.weight"] = (0.5 * (64.0 / FF) ** 0.5 * rng.standard_normal((E, D, FF))).astype(np.float32)
    for dtype in ("f32", "q8_0"):
        path = out / f"model_{dtype}.gguf"
        base.HP["n_ff"] = FF
        w = gguf.GGUFWriter(str(path), "llama")
        w.add_name(f"tessera-tiny-moe-{dtype}")
        w.add_context_length(base.HP["n_ctx_train"])
        w.add_embedding_length(D)
        w.add_block_count(base.HP["n_layer"])
        w.add_feed_forward_length(FF)
        w.add_head_count(base.HP["n_head"])
        w.add_head_count_kv(base.HP["n_head_kv"])
        w.add_rope_dimension_count(base.HP["head_dim"])
        w.add_rope_freq_base(base.HP["rope_theta"])
        w.add_layer_norm_rms_eps(base.HP["eps"])
        w.add_vocab_size(base.HP["n_vocab"])
        w.add_expert_count(E)
        w.add_expert_used_count(K)
        w.add_file_type(base.DTYPES[dtype][1])
        base.add_synthetic_tokenizer(w)
        for name, arr in W.items():
            if arr.ndim == 1 or dtype == "f32" or "ffn_gate_inp" in name:  # llama-quantize keeps routers F32
                w.add_tensor(name, np.ascontiguousarray(arr))
            else:  # gguf-py quantises along the last (contiguous) axis, 3-D included
                q = gguf.quants.quantize(np.ascontiguousarray(arr), base.DTYPES[dtype][0])
                w.add_tensor(name, q, raw_shape=q.shape, raw_dtype=base.DTYPES[dtype][0])
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()
        r = gguf.GGUFReader(str(path))
        shapes = {t.name: [int(x) for x in t.shape] for t in r.tensors if "exps" in t.name or "inp" in t.name}
        tokens = base.make_tokens(base.SEED + 1)
        logits, greedy, _ = base.llamacpp_golden(path, tokens)
        logits.astype("<f4").tofile(out / f"logits_{dtype}.f32")
        (out / f"golden_{dtype}.json").write_text(json.dumps({
            "description": f"tiny random MoE (8 experts, top-2) llama GGUF, {dtype.upper()} weights, goldens from llama.cpp",
            "producer": "tools/make_moe_gguf_golden.py (gguf-py writer + llama.cpp via llama-cpp-python)",
            "model": f"model_{dtype}.gguf", "weight_dtype": dtype.upper(),
            "experts": E, "experts_used": K, "expert_ffn": FF,
            "gguf_ne_of_moe_tensors": shapes,
            "versions": {"llama_cpp_python": llama_cpp.__version__, "numpy": np.__version__},
            "tokens": tokens,
            "logits": {"file": f"logits_{dtype}.f32", "dtype": "float32", "shape": [len(tokens), base.HP["n_vocab"]]},
            "greedy": {"method": "argmax, then eval one token at a time (KV cache)", "tokens": greedy},
        }, indent=1) + "\n")
        print(f"wrote {path} ({path.stat().st_size} bytes): greedy {greedy}, |logits| max {np.abs(logits).max():.3f}")


if __name__ == "__main__":
    main()
