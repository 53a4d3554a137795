#!/usr/bin/env python3
"""Write the needle model: a one-layer Llama GGUF whose weights are constructed (not
trained) so that a query token retrieves the value of one needle token anywhere in a
long haystack. Used by the context-parallel tests (docs/CONTEXT_PARALLEL.md).

Vocabulary: the synthetic 320-token SPM vocab of the tiny goldens (tools/gguf_common.py),
so `tessera generate --prompt-file` works on text: lowercase text is haystack, one
uppercase letter A..P is the needle (a byte-fallback token <0x41>..<0x50>), and a final
'?' (<0x3F>) is the query; the model's greedy answer is the needle's own token.

Construction (dim 32, 1 head of head_dim 8, 1 KV head, rms eps 1e-5; RoPE over the
whole head as llama.cpp requires, with theta 1e30 so that the last pair, head dims 6-7,
turns by pos * 1e30^(-3/4) < 1e-15 rad even at 4M positions: position-free):
  embedding   '?' -> e0; needle v -> e1 + cos(t_v) e2 + sin(t_v) e3 with t_v = 2 pi v / 16;
              every other token -> e_(4 + id % 28) (haystack)
  attn_q      head dim 6 <- ALPHA * xn[0]          (only the query asks)
  attn_k      head dim 6 <- BETA  * xn[1]          (only needles answer)
  attn_v      head dims 4, 5 <- xn[2], xn[3]       (the needle's value angle)
  attn_output residual dims 2, 3 <- head dims 4, 5
  ffn         gate, up and down all zero (adds nothing)
  output      row of needle v = cos(t_v) e2 + sin(t_v) e3; every other row 0
After the attention norm xn[0] = sqrt(32) for '?' and xn[1] = 4 for a needle, so the
query-needle score is ALPHA * BETA * sqrt(32) * 4 / sqrt(8) = 8 ALPHA BETA = 40 and every
other score is 0: the needle's softmax weight is e^40 / (e^40 + n) > 1 - 1e-11 for n up
to 2^24 tokens, and the answer's logit beats the next value's by 5.5 (1 - cos 22.5 deg).

Checked against llama.cpp (llama-cpp-python): haystacks of CHECK_TOKENS tokens with the
needle at several depths, each answered with the needle token; results in needle.json.

Run: /work/main/.venv-tools/bin/python tools/make_needle_model.py [--out tests/data/needle]
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np
import gguf

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gguf_common import add_synthetic_tokenizer  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
DIM, HEAD_DIM, FFN, VOCAB = 32, 8, 8, 320
CONTEXT = 1 << 22          # 4M positions: the tests go to 128K, the benchmark to 1M
ALPHA = BETA = math.sqrt(5.0)
QUERY = 3 + ord("?")       # byte-fallback ids: 3 + byte
NEEDLES = [3 + ord("A") + v for v in range(16)]
CHECK_TOKENS = 4096
SEED = 2024


def weights() -> dict:
    emb = np.zeros((VOCAB, DIM), np.float32)
    out = np.zeros((VOCAB, DIM), np.float32)
    for t in range(VOCAB):
        emb[t, 4 + t % 28] = 1.0
    emb[QUERY] = 0
    emb[QUERY, 0] = 1.0
    for v, t in enumerate(NEEDLES):
        ang = 2 * math.pi * v / 16
        emb[t] = 0
        emb[t, 1] = 1.0
        emb[t, 2], emb[t, 3] = math.cos(ang), math.sin(ang)
        out[t, 2], out[t, 3] = math.cos(ang), math.sin(ang)
    wq = np.zeros((HEAD_DIM, DIM), np.float32)
    wk = np.zeros((HEAD_DIM, DIM), np.float32)
    wv = np.zeros((HEAD_DIM, DIM), np.float32)
    wo = np.zeros((DIM, HEAD_DIM), np.float32)
    wq[6, 0] = ALPHA
    wk[6, 1] = BETA
    wv[4, 2] = wv[5, 3] = 1.0
    wo[2, 4] = wo[3, 5] = 1.0
    return {
        "token_embd.weight": emb,
        "blk.0.attn_norm.weight": np.ones(DIM, np.float32),
        "blk.0.attn_q.weight": wq,
        "blk.0.attn_k.weight": wk,
        "blk.0.attn_v.weight": wv,
        "blk.0.attn_output.weight": wo,
        "blk.0.ffn_norm.weight": np.ones(DIM, np.float32),
        "blk.0.ffn_gate.weight": np.zeros((FFN, DIM), np.float32),
        "blk.0.ffn_up.weight": np.zeros((FFN, DIM), np.float32),
        "blk.0.ffn_down.weight": np.zeros((DIM, FFN), np.float32),
        "output_norm.weight": np.ones(DIM, np.float32),
        "output.weight": out,
    }


def write(path: Path):
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_name("tessera-needle")
    w.add_context_length(CONTEXT)
    w.add_embedding_length(DIM)
    w.add_block_count(1)
    w.add_feed_forward_length(FFN)
    w.add_head_count(1)
    w.add_head_count_kv(1)
    w.add_key_length(HEAD_DIM)
    w.add_value_length(HEAD_DIM)
    w.add_rope_dimension_count(HEAD_DIM)
    w.add_rope_freq_base(1e30)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_vocab_size(VOCAB)
    w.add_file_type(0)
    add_synthetic_tokenizer(w)
    for name, arr in weights().items():
        w.add_tensor(name, arr)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def haystack(rng, n: int, depth: int, needle: int) -> list[int]:
    """BOS, n - 3 haystack tokens (ids 3..319 that are neither needles nor the query), the
    needle at `depth`, the query last."""
    pool = [t for t in range(3, VOCAB) if t != QUERY and t not in NEEDLES]
    toks = [1] + [int(pool[i]) for i in rng.integers(0, len(pool), size=n - 2)]
    toks[depth] = needle
    return toks + [QUERY]


def check_llamacpp(path: Path) -> list[dict]:
    import llama_cpp
    from gguf_common import open_llama

    llm = open_llama(str(path), use_extra_bufts=False, logits_all=True, n_ctx=CHECK_TOKENS + 16,
                     n_batch=512, n_ubatch=512, n_threads=2, n_threads_batch=2, seed=0, verbose=False,
                     flash_attn=False, type_k=llama_cpp.GGML_TYPE_F32, type_v=llama_cpp.GGML_TYPE_F32)
    rng = np.random.default_rng(SEED)
    results = []
    for depth in [1, 7, CHECK_TOKENS // 3, CHECK_TOKENS // 2, CHECK_TOKENS - 3]:
        needle = NEEDLES[int(rng.integers(0, 16))]
        toks = haystack(rng, CHECK_TOKENS - 1, depth, needle)
        llm.reset()
        llm.eval(toks)
        logits = np.array(llm.scores[llm.n_tokens - 1], dtype=np.float32)
        answer = int(np.argmax(logits))
        results.append({"tokens": len(toks), "depth": depth, "needle": needle, "answer": answer,
                        "margin": float(np.sort(logits)[-1] - np.sort(logits)[-2])})
        assert answer == needle, results[-1]
    return results


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(REPO / "tests/data/needle"))
    ap.add_argument("--no-check", action="store_true")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "needle.gguf"
    write(path)
    info = {"model": "needle.gguf", "query_token": QUERY, "needle_tokens": NEEDLES, "context": CONTEXT,
            "generator": "tools/make_needle_model.py"}
    if not args.no_check:
        import llama_cpp
        info["llama_cpp_version"] = llama_cpp.__version__
        info["llama_cpp_checks"] = check_llamacpp(path)
    (out / "needle.json").write_text(json.dumps(info, indent=1) + "\n")
    print(json.dumps(info, indent=1))


if __name__ == "__main__":
    main()
