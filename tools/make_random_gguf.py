#!/usr/bin/env python3
"""Write a Llama-shaped GGUF with random weights, for benchmarks (NOT committed: large).

Default shape (~125M params): vocab 32000, hidden 768, 12 layers, 12 heads, 4 KV heads
(head_dim 64), ffn 2048, context 2048, untied output.weight. 2D weights in --dtype
(f32 | f16 | bf16 | q8_0 | q4_0 | q4_1; quantised with gguf-py), norms in F32.
The tokenizer (tokenizer.* keys: Llama 2 SentencePiece, 32000 tokens, add_bos=true) is copied
from tests/data/tokenizers/tokenizer-llama-spm/ggml-vocab-llama-spm.gguf via gguf.GGUFReader so
prompts tokenise sensibly. Weights are N(0, 1/sqrt(fan_in)) (embeddings N(0,1)), norms 1.

Run (after `bash tools/setup_venv.sh`), e.g.:
    .venv-tools/bin/python tools/make_random_gguf.py --dtype q8_0 --out /tmp/bench-q8_0.gguf
Takes well under a minute for f32/f16/q8_0 on 2 cores (q4_0/q4_1 quantisation in numpy is a
bit slower). Output sizes at the default shape: f32 ~500 MB, f16 ~250 MB, q8_0 ~133 MB,
q4_0 ~70 MB.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import gguf

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gguf_common import DTYPES, add_weight, copy_tokenizer  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
DEFAULT_TOK = REPO / "tests/data/tokenizers/tokenizer-llama-spm/ggml-vocab-llama-spm.gguf"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dtype", default="f32", choices=list(DTYPES))
    ap.add_argument("--out", type=Path, default=None, help="default: /tmp/tessera-random-<dtype>.gguf")
    ap.add_argument("--hidden", type=int, default=768)
    ap.add_argument("--layers", type=int, default=12)
    ap.add_argument("--heads", type=int, default=12)
    ap.add_argument("--kv-heads", type=int, default=4)
    ap.add_argument("--ffn", type=int, default=2048)
    ap.add_argument("--ctx", type=int, default=2048)
    ap.add_argument("--rope-theta", type=float, default=10000.0)
    ap.add_argument("--tokenizer-gguf", type=Path, default=DEFAULT_TOK)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    out = a.out or Path(f"/tmp/tessera-random-{a.dtype}.gguf")
    E, F, L, H, KV = a.hidden, a.ffn, a.layers, a.heads, a.kv_heads
    assert E % H == 0 and H % KV == 0
    D = E // H
    if a.dtype not in ("f32", "f16", "bf16"):
        assert E % 32 == 0 and F % 32 == 0, "quantised types need hidden and ffn divisible by 32"

    t0 = time.time()
    w = gguf.GGUFWriter(str(out), "llama")
    w.add_name(f"tessera-random-llama-{a.dtype}")
    w.add_context_length(a.ctx)
    w.add_embedding_length(E)
    w.add_block_count(L)
    w.add_feed_forward_length(F)
    w.add_head_count(H)
    w.add_head_count_kv(KV)
    w.add_rope_dimension_count(D)
    w.add_rope_freq_base(a.rope_theta)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_file_type(DTYPES[a.dtype][1])
    V = copy_tokenizer(w, str(a.tokenizer_gguf))
    w.add_vocab_size(V)

    rng = np.random.default_rng(a.seed)

    def rnd(rows, cols, std):
        x = rng.standard_normal((rows, cols), dtype=np.float32)
        x *= std
        return x

    ones = np.ones(E, dtype=np.float32)
    n_params = 0

    def add2(name, rows, cols, std):
        nonlocal n_params
        add_weight(w, name, rnd(rows, cols, std), a.dtype)
        n_params += rows * cols

    add2("token_embd.weight", V, E, 1.0)
    for l in range(L):
        p = f"blk.{l}."
        w.add_tensor(p + "attn_norm.weight", ones)
        add2(p + "attn_q.weight", H * D, E, E ** -0.5)
        add2(p + "attn_k.weight", KV * D, E, E ** -0.5)
        add2(p + "attn_v.weight", KV * D, E, E ** -0.5)
        add2(p + "attn_output.weight", E, H * D, (H * D) ** -0.5)
        w.add_tensor(p + "ffn_norm.weight", ones)
        add2(p + "ffn_gate.weight", F, E, E ** -0.5)
        add2(p + "ffn_up.weight", F, E, E ** -0.5)
        add2(p + "ffn_down.weight", E, F, F ** -0.5)
        n_params += 2 * E
    w.add_tensor("output_norm.weight", ones)
    add2("output.weight", V, E, E ** -0.5)
    n_params += E
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    print(f"wrote {out}: dtype={a.dtype} params={n_params/1e6:.1f}M vocab={V} "
          f"size={out.stat().st_size/1e6:.1f} MB in {time.time()-t0:.1f}s")


if __name__ == "__main__":
    main()
