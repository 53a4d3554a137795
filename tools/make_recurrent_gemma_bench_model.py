#!/usr/bin/env python3
"""Random-weight checkpoints for the RecurrentGemma benchmark (docs/BENCHMARKS.md).

    make_recurrent_gemma_bench_model.py OUT_DIR --preset tiny|2b-layers [--layers N] [--dense]

  tiny       width 128, 2 heads of 64, lru 128, MLP 384 per branch, window 2048,
             6 layers (R R A R R A), vocab 1024: memory and speed vs context, 1K to 1M.
  2b-layers  RecurrentGemma-2B's layer shapes (width 2560, 10 heads of 256, lru 2560,
             MLP 7680 per branch, window 2048, conv 4) with --layers layers (default 3:
             R R A) and a 4096-token vocabulary (the 256K head would dominate a 3-layer
             model and is not what is compared).
  --dense    instead, the dense decoder of the same width for the per-layer comparison:
             a Llama config with hidden 2560, 10 heads of 256, 1 KV head (MQA, as
             RecurrentGemma's attention), SwiGLU 7680, --layers layers, vocab 4096.

Weights are BF16 (as the published checkpoints), N(0, 0.02); nothing here is a
reference, only shapes matter. Needs numpy, torch and safetensors (tools/requirements.txt).
"""
import argparse
import json
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--preset", choices=["tiny", "2b-layers"], required=True)
    ap.add_argument("--layers", type=int, default=None)
    ap.add_argument("--dense", action="store_true")
    a = ap.parse_args()
    if a.preset == "tiny":
        D, H, L, F, layers = 128, 2, 128, 384, a.layers or 6
    else:
        D, H, L, F, layers = 2560, 10, 2560, 7680, a.layers or 3
    V = 1024 if a.preset == "tiny" else 4096
    W, K, hd = 2048, 4, D // H
    rng = np.random.default_rng(0)
    tensors = {}

    def put(name, *shape, scale=0.02):
        tensors[name] = rng.standard_normal(shape, dtype=np.float32) * scale

    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    put("model.embed_tokens.weight", V, D, scale=1.0)
    if a.dense:
        for i in range(layers):
            p = f"model.layers.{i}."
            tensors[p + "input_layernorm.weight"] = np.ones(D, np.float32)
            tensors[p + "post_attention_layernorm.weight"] = np.ones(D, np.float32)
            put(p + "self_attn.q_proj.weight", D, D)
            put(p + "self_attn.k_proj.weight", hd, D)
            put(p + "self_attn.v_proj.weight", hd, D)
            put(p + "self_attn.o_proj.weight", D, D)
            put(p + "mlp.gate_proj.weight", F, D)
            put(p + "mlp.up_proj.weight", F, D)
            put(p + "mlp.down_proj.weight", D, F)
        tensors["model.norm.weight"] = np.ones(D, np.float32)
        config = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": D,
                  "num_hidden_layers": layers, "num_attention_heads": H, "num_key_value_heads": 1, "head_dim": hd,
                  "intermediate_size": F, "vocab_size": V, "max_position_embeddings": 1 << 20,
                  "rms_norm_eps": 1e-6, "rope_theta": 10000.0, "hidden_act": "silu", "tie_word_embeddings": True}
    else:
        types = (["recurrent", "recurrent", "attention"] * 100)[:layers]
        for i, t in enumerate(types):
            p = f"model.layers.{i}."
            tensors[p + "temporal_pre_norm.weight"] = np.zeros(D, np.float32)
            tensors[p + "channel_pre_norm.weight"] = np.zeros(D, np.float32)
            for n, o, i_ in (("gate_proj", F, D), ("up_proj", F, D), ("down_proj", D, F)):
                put(p + f"mlp_block.{n}.weight", o, i_)
                put(p + f"mlp_block.{n}.bias", o)
            tb = p + "temporal_block."
            if t == "recurrent":
                for n, o, i_ in (("linear_x", L, D), ("linear_y", L, D), ("linear_out", D, L)):
                    put(tb + f"{n}.weight", o, i_)
                    put(tb + f"{n}.bias", o)
                put(tb + "conv_1d.weight", L, 1, K, scale=0.5)
                put(tb + "conv_1d.bias", L)
                put(tb + "rg_lru.input_gate_weight", H, L // H, L // H, scale=0.1)
                put(tb + "rg_lru.input_gate_bias", H, L // H)
                put(tb + "rg_lru.recurrent_gate_weight", H, L // H, L // H, scale=0.1)
                put(tb + "rg_lru.recurrent_gate_bias", H, L // H)
                tensors[tb + "rg_lru.recurrent_param"] = np.full(L, 3.0, np.float32)
            else:
                put(tb + "q_proj.weight", D, D)
                put(tb + "k_proj.weight", hd, D)
                put(tb + "v_proj.weight", hd, D)
                put(tb + "o_proj.weight", D, D)
                put(tb + "o_proj.bias", D)
        tensors["model.final_norm.weight"] = np.zeros(D, np.float32)
        config = {"architectures": ["RecurrentGemmaForCausalLM"], "model_type": "recurrent_gemma",
                  "hidden_size": D, "num_hidden_layers": layers, "num_attention_heads": H, "num_key_value_heads": 1,
                  "lru_width": L, "intermediate_size": 2 * F, "vocab_size": V, "attention_window_size": W,
                  "conv1d_width": K, "logits_soft_cap": 30.0, "rms_norm_eps": 1e-6, "rope_theta": 10000.0,
                  "partial_rotary_factor": 0.5, "hidden_activation": "gelu_pytorch_tanh", "block_types": types[:3],
                  "tie_word_embeddings": True}
    save_file({k: torch.from_numpy(v).to(torch.bfloat16) for k, v in tensors.items()}, str(out / "model.safetensors"),
              metadata={"format": "pt"})
    (out / "config.json").write_text(json.dumps(config, indent=1) + "\n")
    print("wrote", out, sum(v.size for v in tensors.values()) / 1e6, "M parameters")


if __name__ == "__main__":
    main()
