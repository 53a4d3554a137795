#!/usr/bin/env python3
"""Generate tiny random Hugging Face Llama checkpoints + golden logits (independent reference).

Produces (committed fixtures, see docs/GOLDENS.md):

  tests/data/hf_tiny_llama/
      config.json, model.safetensors (single file, F32 weights), generation_config.json
      golden.json   input_ids[24], greedy continuation[16], metadata (versions, RoPE layout)
      logits.f32    float32 little-endian, shape [24][320] (logits for every prompt position)
  tests/data/hf_tiny_llama_sharded/
      config.json, model-0000k-of-0000n.safetensors (BF16 weights, >= 2 shards),
      model.safetensors.index.json, generation_config.json, golden.json, logits.f32

Model (a) hf_tiny_llama: vocab 320, hidden 64, intermediate 160, 3 layers, 8 heads,
  4 KV heads (GQA), head_dim 8, rope_theta 10000, rms_norm_eps 1e-5, untied lm_head.
Model (b) hf_tiny_llama_sharded: same but 1 KV head (MQA), tie_word_embeddings=true,
  BF16 storage; golden logits computed in float32 from the bf16-rounded weights.

Everything is computed by transformers' LlamaForCausalLM (eager attention, float32, CPU).
Weights use a deterministic init with a larger std than the HF default so logits are
O(1) and implementation differences are visible.

Run (after `bash tools/setup_venv.sh`):
    .venv-tools/bin/python tools/make_hf_llama_golden.py [--out-root tests/data] [--check-only]

--check-only re-loads the committed fixtures with transformers and verifies the stored
logits / greedy tokens are reproduced (no files written).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parent.parent
SEED = 1234
PROMPT_LEN = 24
GEN_LEN = 16

BASE_CFG = dict(
    vocab_size=320,
    hidden_size=64,
    intermediate_size=160,
    num_hidden_layers=3,
    num_attention_heads=8,
    head_dim=8,
    max_position_embeddings=256,
    rms_norm_eps=1e-5,
    rope_theta=10000.0,
    hidden_act="silu",
    attention_bias=False,
    mlp_bias=False,
    bos_token_id=1,
    eos_token_id=2,
    pad_token_id=None,
    initializer_range=0.02,
)

VARIANTS = {
    "hf_tiny_llama": dict(num_key_value_heads=4, tie_word_embeddings=False,
                          storage_dtype="float32", max_shard_size=None, seed_offset=0),
    "hf_tiny_llama_sharded": dict(num_key_value_heads=1, tie_word_embeddings=True,
                                  storage_dtype="bfloat16", max_shard_size="100KB",
                                  seed_offset=1),
}

ROPE_NOTE = (
    "Hugging Face Llama applies RoPE with rotate_half: for head_dim d, element i (i < d/2) "
    "is paired with element i + d/2 (NOT adjacent pairs 2i, 2i+1). "
    "inv_freq[i] = rope_theta^(-2i/d), angle = pos * inv_freq[i]; "
    "q'[i] = q[i]*cos - q[i+d/2]*sin, q'[i+d/2] = q[i+d/2]*cos + q[i]*sin. "
    "Checkpoints converted to GGUF by llama.cpp's convert_hf_to_gguf.py have q_proj/k_proj rows "
    "permuted so that GGUF uses adjacent-pair rotation instead; these safetensors are NOT permuted."
)


def make_config(variant: dict):
    from transformers import LlamaConfig

    cfg = dict(BASE_CFG)
    cfg["num_key_value_heads"] = variant["num_key_value_heads"]
    cfg["tie_word_embeddings"] = variant["tie_word_embeddings"]
    config = LlamaConfig(**cfg)
    # transformers >= 5 stores rope settings in rope_parameters; make sure theta is 10000.
    rp = getattr(config, "rope_parameters", None)
    if isinstance(rp, dict):
        rp["rope_theta"] = 10000.0
        rp.setdefault("rope_type", "default")
    config._attn_implementation = "eager"
    return config


@torch.no_grad()
def init_weights(model, seed: int):
    """Deterministic init: embeddings N(0,1); q/k/v/o/gate/up/down std 0.5*sqrt(64/fan_in); lm_head std 0.3; norms 1+0.2*N(0,1)."""
    g = torch.Generator().manual_seed(seed)
    for name, p in sorted(model.named_parameters(), key=lambda kv: kv[0]):
        if name.endswith("norm.weight") or "layernorm" in name:
            # non-trivial norm weights so a missing gamma multiply is detected
            p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=g))
        elif "embed_tokens" in name:
            p.copy_(torch.randn(p.shape, generator=g))
        elif name == "lm_head.weight":
            p.copy_(0.3 * torch.randn(p.shape, generator=g))
        else:
            # projections (q,k,v,o,gate,up,down): std 0.5 * 8/sqrt(fan_in)-ish, fan_in = shape[1]
            std = 0.5 * (64.0 / p.shape[1]) ** 0.5
            p.copy_(std * torch.randn(p.shape, generator=g))


def make_prompt(seed: int, vocab: int) -> list[int]:
    rng = np.random.default_rng(seed)
    ids = rng.integers(3, vocab, size=PROMPT_LEN).tolist()
    ids[0] = 1  # BOS
    return [int(x) for x in ids]


@torch.no_grad()
def compute_golden(model, input_ids: list[int]):
    x = torch.tensor([input_ids], dtype=torch.long)
    logits = model(input_ids=x, use_cache=False).logits[0].to(torch.float32).numpy()
    # greedy via generate (KV cache)
    out = model.generate(
        x,
        attention_mask=torch.ones_like(x),
        max_new_tokens=GEN_LEN,
        do_sample=False,
        use_cache=True,
        eos_token_id=None,  # never stop early: we want exactly GEN_LEN tokens
        pad_token_id=0,
        num_beams=1,
    )
    greedy = [int(t) for t in out[0, len(input_ids):].tolist()]
    # cross-check with a naive full-recompute greedy loop (no cache)
    seq = list(input_ids)
    naive = []
    for _ in range(GEN_LEN):
        lg = model(input_ids=torch.tensor([seq]), use_cache=False).logits[0, -1]
        t = int(torch.argmax(lg))
        naive.append(t)
        seq.append(t)
    assert greedy == naive, f"generate() {greedy} != naive greedy {naive}"
    assert greedy[0] == int(np.argmax(logits[-1]))
    return logits, greedy


def versions() -> dict:
    import safetensors
    import transformers

    return {
        "transformers": transformers.__version__,
        "torch": torch.__version__,
        "safetensors": safetensors.__version__,
        "numpy": np.__version__,
        "python": sys.version.split()[0],
    }


def generate(out_root: Path):
    from transformers import LlamaForCausalLM

    torch.manual_seed(SEED)
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    for name, v in VARIANTS.items():
        out = out_root / name
        out.mkdir(parents=True, exist_ok=True)
        for f in out.iterdir():
            if f.is_file():
                f.unlink()
        config = make_config(v)
        model = LlamaForCausalLM(config).to(torch.float32).eval()
        init_weights(model, SEED + v["seed_offset"])
        if v["tie_word_embeddings"]:
            assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()
        store_dtype = getattr(torch, v["storage_dtype"])
        if store_dtype != torch.float32:
            # Round the *parameters* to the storage dtype; golden computed in f32 from the rounded
            # weights. (Do NOT use model.to(bf16).to(f32): that also rounds the non-persistent
            # rotary inv_freq buffer to bf16 and silently changes RoPE.)
            with torch.no_grad():
                for p in model.parameters():
                    p.copy_(p.to(store_dtype).to(torch.float32))
        model.eval()
        input_ids = make_prompt(SEED + 100 + v["seed_offset"], config.vocab_size)
        logits, greedy = compute_golden(model, input_ids)

        # save
        save_model = model.to(store_dtype)
        save_model.config.dtype = v["storage_dtype"]
        kw = {"safe_serialization": True}
        if v["max_shard_size"]:
            kw["max_shard_size"] = v["max_shard_size"]
        save_model.save_pretrained(out, **kw)
        del save_model, model  # (the .to(bf16) above also touched buffers; never reuse it)

        logits.astype("<f4").tofile(out / "logits.f32")
        files = sorted(p.name for p in out.iterdir())
        golden = {
            "description": f"{name}: tiny random LlamaForCausalLM, golden logits from Hugging Face transformers",
            "producer": "tools/make_hf_llama_golden.py (transformers LlamaForCausalLM, eager attention, float32 CPU)",
            "versions": versions(),
            "seed": SEED + v["seed_offset"],
            "weights_storage_dtype": v["storage_dtype"],
            "compute_dtype": "float32",
            "tie_word_embeddings": v["tie_word_embeddings"],
            "num_key_value_heads": v["num_key_value_heads"],
            "rope_layout": "rotate_half (pairs (x[i], x[i+d/2]))",
            "rope_note": ROPE_NOTE,
            "input_ids": input_ids,
            "logits": {"file": "logits.f32", "dtype": "float32", "byte_order": "little",
                       "shape": [PROMPT_LEN, config.vocab_size],
                       "layout": "row-major [position][vocab]; position p = logits after input_ids[0..p]"},
            "greedy": {"method": "model.generate(do_sample=False, use_cache=True, max_new_tokens=16, eos ignored)",
                       "prompt": "all 24 input_ids",
                       "tokens": greedy},
            "logits_stats": {"mean": float(logits.mean()), "std": float(logits.std()),
                             "absmax": float(np.abs(logits).max()),
                             "last_argmax": int(np.argmax(logits[-1]))},
            "files": files,
        }
        (out / "golden.json").write_text(json.dumps(golden, indent=1) + "\n")
        print(f"[{name}] wrote {out}: files={files} greedy={greedy}")
    check(out_root)


@torch.no_grad()
def check(out_root: Path):
    """Reload each fixture with transformers (from disk) and check it reproduces the goldens."""
    from safetensors import safe_open
    from transformers import LlamaForCausalLM

    for name, v in VARIANTS.items():
        d = out_root / name
        g = json.loads((d / "golden.json").read_text())
        model = LlamaForCausalLM.from_pretrained(d, dtype=torch.float32, attn_implementation="eager").eval()
        # storage dtype / shard checks
        st_files = sorted(d.glob("*.safetensors"))
        dtypes = set()
        names = set()
        for f in st_files:
            with safe_open(str(f), "pt") as sf:
                for k in sf.keys():
                    dtypes.add(str(sf.get_tensor(k).dtype))
                    names.add(k)
        want = "torch." + v["storage_dtype"]
        assert dtypes == {want}, (name, dtypes)
        if v["max_shard_size"]:
            assert len(st_files) >= 2 and (d / "model.safetensors.index.json").exists(), st_files
        else:
            assert [f.name for f in st_files] == ["model.safetensors"], st_files
        assert ("lm_head.weight" in names) == (not v["tie_word_embeddings"]), sorted(names)
        ref = np.fromfile(d / "logits.f32", dtype="<f4").reshape(g["logits"]["shape"])
        logits, greedy = compute_golden(model, g["input_ids"])
        err = float(np.abs(logits - ref).max())
        assert err < 1e-4, (name, err)
        assert greedy == g["greedy"]["tokens"], (name, greedy, g["greedy"]["tokens"])
        # independent float64 numpy forward: permute q/k rows the way llama.cpp's
        # convert_hf_to_gguf.py does and run the adjacent-pair-RoPE reference from gguf_common.
        # Agreement demonstrates the rotate_half <-> adjacent-pair equivalence described in ROPE_NOTE.
        np_err = float(np.abs(numpy_reference(d, g["input_ids"]) - ref).max())
        assert np_err < 1e-3, (name, np_err)
        print(f"[{name}] check ok: numpy(f64, permuted q/k, adjacent RoPE) max|d|={np_err:.3g};"
              f" {len(st_files)} safetensors file(s), dtypes={dtypes}, "
              f"max|dlogits|={err:.3g}, greedy reproduced")


def hf_permute(w: np.ndarray, n_head: int) -> np.ndarray:
    """llama.cpp convert_hf_to_gguf.py LlamaModel.permute (rotate_half rows -> adjacent pairs)."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def numpy_reference(d: Path, input_ids: list[int]) -> np.ndarray:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from gguf_common import reference_forward

    cfg = json.loads((d / "config.json").read_text())
    sd = {}
    for f in sorted(d.glob("*.safetensors")):
        from safetensors.torch import load_file as load_pt
        sd.update({k: t.to(torch.float32).numpy() for k, t in load_pt(str(f)).items()})
    H, KV = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    W = {"token_embd.weight": sd["model.embed_tokens.weight"],
         "output_norm.weight": sd["model.norm.weight"]}
    if "lm_head.weight" in sd:
        W["output.weight"] = sd["lm_head.weight"]
    for l in range(cfg["num_hidden_layers"]):
        s, p = f"model.layers.{l}.", f"blk.{l}."
        W[p + "attn_norm.weight"] = sd[s + "input_layernorm.weight"]
        W[p + "attn_q.weight"] = hf_permute(sd[s + "self_attn.q_proj.weight"], H)
        W[p + "attn_k.weight"] = hf_permute(sd[s + "self_attn.k_proj.weight"], KV)
        W[p + "attn_v.weight"] = sd[s + "self_attn.v_proj.weight"]
        W[p + "attn_output.weight"] = sd[s + "self_attn.o_proj.weight"]
        W[p + "ffn_norm.weight"] = sd[s + "post_attention_layernorm.weight"]
        W[p + "ffn_gate.weight"] = sd[s + "mlp.gate_proj.weight"]
        W[p + "ffn_up.weight"] = sd[s + "mlp.up_proj.weight"]
        W[p + "ffn_down.weight"] = sd[s + "mlp.down_proj.weight"]
    hp = dict(n_head=H, n_head_kv=KV, head_dim=cfg["head_dim"], eps=cfg["rms_norm_eps"],
              rope_theta=cfg.get("rope_parameters", {}).get("rope_theta", cfg.get("rope_theta")),
              n_layer=cfg["num_hidden_layers"])
    return reference_forward(W, hp, input_ids)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out-root", type=Path, default=REPO / "tests" / "data")
    ap.add_argument("--check-only", action="store_true")
    a = ap.parse_args()
    if a.check_only:
        check(a.out_root)
    else:
        generate(a.out_root)


if __name__ == "__main__":
    main()
