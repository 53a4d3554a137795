#!/usr/bin/env python3
"""Benchmark llama.cpp (via llama-cpp-python) prefill and decode speed on a GGUF.

Mirrors the settings `tessera bench` uses: --threads 2, a prompt of --prompt-tokens P tokens
(default 128, BOS + a fixed English text tokenised by the GGUF's tokenizer, repeated/truncated
to exactly P), then --gen-tokens G (default 64) greedy decode steps, one token per llama_decode.
Prefill = one batch of P tokens (n_batch = n_ubatch >= P). Repeated --reps times (default 3);
the median is reported. Timing uses llama.cpp's own perf counters (llama_perf_context:
t_p_eval_ms / t_eval_ms) and, as a cross-check, Python wall-clock around the calls
(wall_* includes llama-cpp-python overhead: logits copy + argmax per token).

Prints ONE JSON line, e.g.
  {"engine": "llama.cpp", "llama_cpp_python": "0.3.36", "model": "...", "threads": 2,
   "prompt_tokens": 128, "gen_tokens": 64, "prefill_tok_s": ..., "decode_tok_s": ..., ...}

Run (after `bash tools/setup_venv.sh`):
    .venv-tools/bin/python tools/make_random_gguf.py --dtype q8_0 --out /tmp/r.gguf
    .venv-tools/bin/python tools/llamacpp_bench.py /tmp/r.gguf [--threads 2] [--prompt-tokens 128] [--gen-tokens 64]
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

TEXT = (b"Once upon a time, in a small village at the edge of a great forest, there lived an old "
        b"clockmaker who repaired every clock in the valley. Each morning the children gathered at "
        b"his window to watch the tiny gears turn, and each evening he told them stories about the "
        b"mountains, the rivers and the stars that guided travellers home. ")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--prompt-tokens", type=int, default=128)
    ap.add_argument("--gen-tokens", type=int, default=64)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--no-extra-bufts", action="store_true",
                    help="disable llama.cpp CPU weight repacking / AMX (use_extra_bufts=False)")
    ap.add_argument("--kv-f32", action="store_true", help="KV cache in F32 (llama.cpp default: F16)")
    a = ap.parse_args()

    import llama_cpp

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from gguf_common import last_logits, open_llama

    P, G = a.prompt_tokens, a.gen_tokens
    kw = {}
    if a.kv_f32:
        kw.update(type_k=llama_cpp.GGML_TYPE_F32, type_v=llama_cpp.GGML_TYPE_F32)
    llm = open_llama(a.model, use_extra_bufts=not a.no_extra_bufts, n_ctx=P + G + 8, n_batch=max(P, 8), n_ubatch=max(P, 8),
                n_threads=a.threads, n_threads_batch=a.threads, seed=0, verbose=False,
                logits_all=False, flash_attn=False, **kw)
    add_bos = llm._model.add_bos_token() if hasattr(llm._model, "add_bos_token") else True
    body = llm.tokenize(TEXT * 50, add_bos=False)
    bos = [llm.token_bos()] if add_bos else []
    prompt = (bos + body)[:P]
    assert len(prompt) == P, "text too short for requested prompt length"

    ctx = llm._ctx.ctx
    runs = []
    for rep in range(a.reps + 1):  # first run is a warm-up, discarded
        llm.reset()
        llama_cpp.llama_perf_context_reset(ctx)
        t0 = time.perf_counter()
        llm.eval(prompt)
        t1 = time.perf_counter()
        out = []
        tok = int(np.argmax(last_logits(llm)))
        t2 = time.perf_counter()
        for _ in range(G):
            out.append(tok)
            llm.eval([tok])
            tok = int(np.argmax(last_logits(llm)))
        t3 = time.perf_counter()
        perf = llama_cpp.llama_perf_context(ctx)
        if rep == 0:
            continue
        runs.append({
            "prefill_tok_s": perf.n_p_eval / (perf.t_p_eval_ms / 1e3) if perf.t_p_eval_ms > 0 else None,
            "decode_tok_s": perf.n_eval / (perf.t_eval_ms / 1e3) if perf.t_eval_ms > 0 else None,
            "n_p_eval": perf.n_p_eval, "n_eval": perf.n_eval,
            "wall_prefill_tok_s": P / (t1 - t0),
            "wall_decode_tok_s": G / (t3 - t2),
            "tokens": out,
        })
    med = lambda k: statistics.median(r[k] for r in runs)
    res = {
        "engine": "llama.cpp",
        "llama_cpp_python": llama_cpp.__version__,
        "llama_cpp_system_info": llama_cpp.llama_print_system_info().decode().strip(),
        "model": a.model,
        "threads": a.threads,
        "prompt_tokens": P,
        "gen_tokens": G,
        "reps": a.reps,
        "kv_cache": "f32" if a.kv_f32 else "f16",
        "use_extra_bufts": not a.no_extra_bufts,
        "prefill_tok_s": round(med("prefill_tok_s"), 2),
        "decode_tok_s": round(med("decode_tok_s"), 2),
        "wall_prefill_tok_s": round(med("wall_prefill_tok_s"), 2),
        "wall_decode_tok_s": round(med("wall_decode_tok_s"), 2),
        "per_run": [{k: round(v, 2) for k, v in r.items() if isinstance(v, float)} for r in runs],
        "perf_counts": {"n_p_eval": runs[-1]["n_p_eval"], "n_eval": runs[-1]["n_eval"]},
        "greedy_first8": runs[-1]["tokens"][:8],
        "deterministic": all(r["tokens"] == runs[0]["tokens"] for r in runs),
    }
    print(json.dumps(res))


if __name__ == "__main__":
    main()
