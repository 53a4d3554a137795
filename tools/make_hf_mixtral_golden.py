#!/usr/bin/env python3
"""Tiny random Hugging Face Mixtral checkpoint + golden logits from transformers.

Writes tests/data/hf_tiny_mixtral/ (committed fixture, docs/GOLDENS.md, docs/MOE.md):
    config.json, model.safetensors (F32; per-expert tensors
    model.layers.N.block_sparse_moe.experts.M.w{1,2,3}.weight, as save_pretrained writes),
    golden.json   input_ids[24], greedy continuation[16], versions
    logits.f32    float32 little-endian [24][320]

Model: vocab 320, hidden 64, 2 layers, 8 heads / 4 KV heads, 8 experts of 32 units,
top-2 (Mixtral renormalises the two softmax gates). Weights are drawn with a larger
std than the HF default so the router's choices and the logits are O(1) and a wrong
expert, gate or renormalisation is visible. Computed by MixtralForCausalLM (eager
attention, float32, CPU).

    /work/main/.venv-tools/bin/python tools/make_hf_mixtral_golden.py [--out tests/data/hf_tiny_mixtral]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parent.parent
SEED = 4321
PROMPT_LEN = 24
GEN_LEN = 16


def make_model():
    from transformers import MixtralConfig, MixtralForCausalLM

    cfg = MixtralConfig(vocab_size=320, hidden_size=64, intermediate_size=32, num_hidden_layers=2,
                        num_attention_heads=8, num_key_value_heads=4, head_dim=8, num_local_experts=8,
                        num_experts_per_tok=2, max_position_embeddings=256, rms_norm_eps=1e-5,
                        rope_theta=10000.0, tie_word_embeddings=False, bos_token_id=1, eos_token_id=2,
                        sliding_window=None, router_jitter_noise=0.0)
    rp = getattr(cfg, "rope_parameters", None)
    if isinstance(rp, dict):
        rp["rope_theta"] = 10000.0
        rp.setdefault("rope_type", "default")
    cfg._attn_implementation = "eager"
    model = MixtralForCausalLM(cfg).to(torch.float32).eval()
    g = torch.Generator().manual_seed(SEED)
    with torch.no_grad():
        for name, p in sorted(model.named_parameters(), key=lambda kv: kv[0]):
            if "norm" in name:
                p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=g))
            elif "embed_tokens" in name:
                p.copy_(torch.randn(p.shape, generator=g))
            elif name == "lm_head.weight":
                p.copy_(0.3 * torch.randn(p.shape, generator=g))
            elif name.endswith("mlp.gate.weight"):  # router: O(1) logits, spread choices
                p.copy_(0.25 * torch.randn(p.shape, generator=g))
            else:
                fan_in = p.shape[-1]
                p.copy_(0.5 * (64.0 / fan_in) ** 0.5 * torch.randn(p.shape, generator=g))
    return model


@torch.no_grad()
def golden(model, ids):
    x = torch.tensor([ids])
    logits = model(input_ids=x, use_cache=False).logits[0].float().numpy()
    seq, out = list(ids), []
    for _ in range(GEN_LEN):  # naive greedy, full recompute
        t = int(torch.argmax(model(input_ids=torch.tensor([seq]), use_cache=False).logits[0, -1]))
        out.append(t)
        seq.append(t)
    return logits, out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(REPO / "tests/data/hf_tiny_mixtral"))
    out = Path(ap.parse_args().out)
    out.mkdir(parents=True, exist_ok=True)
    for f in out.iterdir():
        f.unlink()
    import safetensors
    import transformers
    from safetensors import safe_open
    from transformers import MixtralForCausalLM

    torch.manual_seed(SEED)
    model = make_model()
    ids = [1] + [int(v) for v in np.random.default_rng(SEED).integers(3, 320, size=PROMPT_LEN - 1)]
    logits, greedy = golden(model, ids)
    model.save_pretrained(out, safe_serialization=True)
    for f in ("generation_config.json",):
        (out / f).unlink(missing_ok=True)
    # What is on disk must reproduce the goldens when transformers loads it back.
    again = MixtralForCausalLM.from_pretrained(out, dtype=torch.float32, attn_implementation="eager").eval()
    l2, g2 = golden(again, ids)
    assert np.array_equal(l2, logits) and g2 == greedy
    with safe_open(str(out / "model.safetensors"), "pt") as f:
        names = sorted(f.keys())
    assert "model.layers.0.block_sparse_moe.experts.7.w2.weight" in names, names[:10]
    logits.astype("<f4").tofile(out / "logits.f32")
    (out / "golden.json").write_text(json.dumps({
        "description": "hf_tiny_mixtral: tiny random MixtralForCausalLM, golden logits from Hugging Face transformers",
        "producer": "tools/make_hf_mixtral_golden.py (transformers MixtralForCausalLM, eager attention, float32 CPU)",
        "versions": {"transformers": transformers.__version__, "torch": torch.__version__,
                     "safetensors": safetensors.__version__, "numpy": np.__version__,
                     "python": sys.version.split()[0]},
        "seed": SEED,
        "input_ids": ids,
        "logits": {"file": "logits.f32", "dtype": "float32", "shape": [PROMPT_LEN, 320],
                   "layout": "row-major [position][vocab]"},
        "greedy": {"method": "argmax of a full recompute per step, 16 tokens, eos ignored", "tokens": greedy},
        "logits_stats": {"absmax": float(np.abs(logits).max()), "std": float(logits.std())},
        "tensors": names[:12] + ["..."],
    }, indent=1) + "\n")
    print(f"wrote {out}: greedy {greedy}, |logits| max {np.abs(logits).max():.3f}")


if __name__ == "__main__":
    main()
