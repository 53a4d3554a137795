#!/usr/bin/env python3
"""Tiny random RecurrentGemmaForCausalLM + golden logits from Hugging Face transformers.

Writes tests/data/hf_tiny_recurrent_gemma/ (committed; CI never runs Python):
    config.json, model.safetensors (F32), generation_config.json
    golden.json   input_ids (40 tokens, five times the attention window of 8),
                  greedy continuation (24 tokens, from generate() with its cache),
                  metadata (versions, config)
    logits.f32    float32 [40][320]: logits of every prompt position, one forward
                  without cache (the sliding-window mask over the whole prompt)

Model: vocab 320 (the gguf_tiny tokenizer's size, so CLI tests can tokenise text),
hidden 64, lru_width 80 (!= hidden, so a transposed gate or conv is caught),
4 heads (head_dim 16, partial RoPE over 8 dims), 1 KV head, intermediate 128 (64 per
MLP branch), 6 layers (R R A R R A), window 8, conv width 4, soft cap 30.
Every parameter is random (biases and norm scales too, which HF initialises to zero),
so a missing bias or a "1 +" norm bug changes the logits.

Also cross-checks the continuation with a naive no-cache greedy loop, and (when the
`recurrentgemma` package's PyTorch implementation imports) Google DeepMind's Griffin
on the same weights: the max logit difference is stored in golden.json.

    /work/main/.venv-tools/bin/python tools/make_recurrent_gemma_golden.py
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "tests/data/hf_tiny_recurrent_gemma"
SEED = 4321
PROMPT_LEN = 40
GEN_LEN = 24

CFG = dict(
    vocab_size=320,
    hidden_size=64,
    lru_width=80,
    intermediate_size=128,
    num_hidden_layers=6,
    num_attention_heads=4,
    num_key_value_heads=1,
    attention_window_size=8,
    conv1d_width=4,
    logits_soft_cap=30.0,
    rms_norm_eps=1e-6,
    hidden_activation="gelu_pytorch_tanh",
    block_types=["recurrent", "recurrent", "attention"],
    pad_token_id=0,
    bos_token_id=2,
    eos_token_id=1,
    tie_word_embeddings=True,
    rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "partial_rotary_factor": 0.5},
)


@torch.no_grad()
def init_weights(model, seed: int):
    g = torch.Generator().manual_seed(seed)
    for name, p in sorted(model.named_parameters(), key=lambda kv: kv[0]):
        if name.endswith("recurrent_param"):
            continue  # HF's init gives a in (0.9, 0.999): a realistic slow decay
        if "norm" in name:
            p.copy_(0.2 * torch.randn(p.shape, generator=g))  # used as (1 + w)
        elif name.endswith("bias"):
            p.copy_(0.1 * torch.randn(p.shape, generator=g))
        elif "embed_tokens" in name:
            p.copy_(0.05 * torch.randn(p.shape, generator=g))
        elif "gate_weight" in name:  # [heads][block][block]
            p.copy_(torch.randn(p.shape, generator=g) / p.shape[-1] ** 0.5)
        elif "conv_1d" in name:
            p.copy_(0.5 * torch.randn(p.shape, generator=g))
        elif any(k in name for k in ("o_proj", "linear_out", "down_proj")):
            p.copy_(2.0 * torch.randn(p.shape, generator=g) / p.shape[-1] ** 0.5)
        else:
            p.copy_(0.7 * torch.randn(p.shape, generator=g) / p.shape[-1] ** 0.5)


@torch.no_grad()
def golden(model, ids):
    x = torch.tensor([ids])
    logits = model(input_ids=x, use_cache=False).logits[0].float().numpy()
    out = model.generate(x, attention_mask=torch.ones_like(x), max_new_tokens=GEN_LEN, do_sample=False,
                         use_cache=True, eos_token_id=None, pad_token_id=0, num_beams=1)
    greedy = [int(t) for t in out[0, len(ids):]]
    seq, naive = list(ids), []
    for _ in range(GEN_LEN):
        t = int(torch.argmax(model(input_ids=torch.tensor([seq]), use_cache=False).logits[0, -1]))
        naive.append(t)
        seq.append(t)
    assert greedy == naive, f"generate() {greedy} != no-cache greedy {naive}"
    return logits, greedy


DEBUG_HOOKS = None


def deepmind_logits(model, ids):
    """Griffin from the recurrentgemma package (PyTorch) on the same weights, or None."""
    try:
        import importlib.util
        import types
        # recurrentgemma/__init__.py imports the JAX version (flax); load only the
        # torch subpackage under a stub parent package.
        if "recurrentgemma" not in sys.modules:
            root = Path(importlib.util.find_spec("recurrentgemma").origin).parent
            pkg = types.ModuleType("recurrentgemma")
            pkg.__path__ = [str(root)]
            sys.modules["recurrentgemma"] = pkg
        from recurrentgemma import common
        from recurrentgemma.torch import griffin
    except Exception as e:  # noqa: BLE001
        return None, f"recurrentgemma (DeepMind) not runnable: {type(e).__name__}: {e}"
    c = model.config
    cfg = common.GriffinConfig(
        vocab_size=c.vocab_size, width=c.hidden_size, mlp_expanded_width=c.intermediate_size // 2,
        num_heads=c.num_attention_heads, lru_width=c.lru_width,
        block_types=tuple(common.TemporalBlockType.RECURRENT if b == "recurrent" else common.TemporalBlockType.ATTENTION
                          for b in (c.block_types * 100)[: c.num_hidden_layers]),
        # DeepMind's mask admits q - k in [0, window] (window + 1 keys), transformers'
        # q - k in [0, window) (window keys): the same model needs window - 1 here.
        attention_window_size=c.attention_window_size - 1, logits_soft_cap=c.logits_soft_cap,
        embeddings_scale_by_sqrt_dim=True, scan_type=common.ScanType.LINEAR_NATIVE)
    dm = griffin.Griffin(cfg, dtype=torch.float32)
    sd = {}
    hf = {k: v.detach().clone() for k, v in model.state_dict().items()}
    sd["embedder.input_embedding"] = hf["model.embed_tokens.weight"]
    sd["final_norm.scale"] = hf["model.final_norm.weight"]
    for i in range(c.num_hidden_layers):
        h, d = f"model.layers.{i}.", f"blocks.{i}."
        sd[d + "temporal_pre_norm.scale"] = hf[h + "temporal_pre_norm.weight"]
        sd[d + "channel_pre_norm.scale"] = hf[h + "channel_pre_norm.weight"]
        sd[d + "mlp_block.ffw_up.w"] = torch.stack([hf[h + "mlp_block.gate_proj.weight"].T,
                                                    hf[h + "mlp_block.up_proj.weight"].T])
        sd[d + "mlp_block.ffw_up.b"] = torch.stack([hf[h + "mlp_block.gate_proj.bias"],
                                                    hf[h + "mlp_block.up_proj.bias"]])[:, None, None, :]
        sd[d + "mlp_block.ffw_down.weight"] = hf[h + "mlp_block.down_proj.weight"]
        sd[d + "mlp_block.ffw_down.bias"] = hf[h + "mlp_block.down_proj.bias"]
        t = h + "temporal_block."
        if h + "temporal_block.q_proj.weight" in hf:
            for a, b in (("proj_q", "q_proj"), ("proj_k", "k_proj"), ("proj_v", "v_proj"), ("proj_final", "o_proj")):
                sd[d + f"attention_block.{a}.weight"] = hf[t + f"{b}.weight"]
            sd[d + "attention_block.proj_final.bias"] = hf[t + "o_proj.bias"]
        else:
            for a, b in (("linear_x", "linear_x"), ("linear_y", "linear_y"), ("linear_out", "linear_out")):
                sd[d + f"recurrent_block.{a}.weight"] = hf[t + f"{b}.weight"]
                sd[d + f"recurrent_block.{a}.bias"] = hf[t + f"{b}.bias"]
            # HF's Conv1d weight [L][1][K] (padding K - 1) multiplies x[t - (K-1-j)] by tap j;
            # DeepMind's w [K][L] multiplies x[t - s] by w[K-1-s]: the same taps, transposed.
            sd[d + "recurrent_block.conv_1d.w"] = hf[t + "conv_1d.weight"][:, 0, :].T
            sd[d + "recurrent_block.conv_1d.b"] = hf[t + "conv_1d.bias"]
            sd[d + "recurrent_block.rg_lru.a_param"] = hf[t + "rg_lru.recurrent_param"]
            sd[d + "recurrent_block.rg_lru.input_gate.w"] = hf[t + "rg_lru.input_gate_weight"]
            sd[d + "recurrent_block.rg_lru.input_gate.b"] = hf[t + "rg_lru.input_gate_bias"]
            sd[d + "recurrent_block.rg_lru.a_gate.w"] = hf[t + "rg_lru.recurrent_gate_weight"]
            sd[d + "recurrent_block.rg_lru.a_gate.b"] = hf[t + "rg_lru.recurrent_gate_bias"]
    missing = set(dm.state_dict()) ^ set(sd)
    if missing:
        return None, f"recurrentgemma (DeepMind): unmapped parameters {sorted(missing)[:4]}"
    dm.load_state_dict(sd, strict=True)
    if DEBUG_HOOKS is not None:
        for i, b in enumerate(dm.blocks):
            b.register_forward_hook(lambda mod, inp, out, i=i: DEBUG_HOOKS.__setitem__(("dm", i), out[0].detach()))
            (b.recurrent_block if hasattr(b, "recurrent_block") else b.attention_block).register_forward_hook(
                lambda mod, inp, out, i=i: DEBUG_HOOKS.__setitem__(("dmt", i), out[0].detach()))
    x = torch.tensor([ids])
    pos = torch.arange(len(ids))[None]
    with torch.no_grad():
        logits, _ = dm(x, pos)
    return logits[0].float().numpy(), "ok (window - 1, see the mask note)"


def main():
    from transformers import RecurrentGemmaConfig, RecurrentGemmaForCausalLM
    import safetensors
    import transformers

    torch.manual_seed(SEED)
    config = RecurrentGemmaConfig(**CFG)
    config._attn_implementation = "eager"
    model = RecurrentGemmaForCausalLM(config).float().eval()
    init_weights(model, SEED)
    rng = np.random.default_rng(SEED + 1)
    ids = [2] + [int(t) for t in rng.integers(3, CFG["vocab_size"], size=PROMPT_LEN - 1)]
    logits, greedy = golden(model, ids)

    dm, dm_note = deepmind_logits(model, ids)
    dm_diff = None if dm is None else float(np.abs(dm - logits).max())
    print("DeepMind:", dm_note, "max |dm - hf| =", dm_diff)

    OUT.mkdir(parents=True, exist_ok=True)
    for f in OUT.iterdir():
        f.unlink()
    model.save_pretrained(OUT, safe_serialization=True)
    logits.astype("<f4").tofile(OUT / "logits.f32")
    meta = {
        "description": "hf_tiny_recurrent_gemma: tiny random RecurrentGemmaForCausalLM, goldens from transformers",
        "producer": "tools/make_recurrent_gemma_golden.py (eager attention, float32, CPU)",
        "versions": {"transformers": transformers.__version__, "torch": torch.__version__,
                     "safetensors": safetensors.__version__, "numpy": np.__version__},
        "seed": SEED,
        "attention_window": CFG["attention_window_size"],
        "mask": "query at p sees keys at p - window < k <= p (transformers' sliding_window_overlay)",
        "input_ids": ids,
        "logits": {"file": "logits.f32", "dtype": "float32", "shape": [len(ids), CFG["vocab_size"]],
                   "how": "one forward, use_cache=False"},
        "greedy": {"tokens": greedy, "how": "generate(use_cache=True), equal to a no-cache greedy loop"},
        "deepmind_recurrentgemma": {"status": dm_note, "max_abs_logit_diff_vs_hf": dm_diff},
    }
    (OUT / "golden.json").write_text(json.dumps(meta, indent=1) + "\n")
    print("wrote", OUT, "greedy", greedy)


if __name__ == "__main__":
    main()
