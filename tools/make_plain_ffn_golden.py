#!/usr/bin/env python3
"""Golden for the dense decoder's plain (ungated) FFN, down(silu(up x)).

llama.cpp's llama graph requires ffn_gate, so this golden comes from the float64 numpy
reference of tools/gguf_common.reference_forward (the implementation that reproduces
llama.cpp's gated logits to 2.6e-5 on the same weights, see docs/GOLDENS.md), run on the
tiny F32 Llama of make_gguf_goldens.py with its ffn_gate tensors removed.

Writes tests/data/gguf_tiny/model_f32_plain_ffn.gguf, logits_f32_plain_ffn.f32 [16][320]
and golden_f32_plain_ffn.json (tokens, 8 greedy tokens by argmax over full recomputes).
Run: .venv-tools/bin/python tools/make_plain_ffn_golden.py
"""
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_gguf_goldens as g  # noqa: E402
from gguf_common import reference_forward  # noqa: E402


def main():
    out = g.REPO / "tests" / "data" / "gguf_tiny"
    W = {k: v for k, v in g.make_float_weights(g.SEED).items() if "ffn_gate" not in k}
    tokens = g.make_tokens(g.SEED + 1)
    name = "f32_plain_ffn"
    path = out / f"model_{name}.gguf"
    stored = g.write_gguf(path, W, "f32")
    logits = reference_forward(stored, g.HP, tokens).astype(np.float32)
    logits.astype("<f4").tofile(out / f"logits_{name}.f32")
    seq, greedy = list(tokens), []
    for _ in range(8):
        nxt = int(np.argmax(reference_forward(stored, g.HP, seq)[-1]))
        greedy.append(nxt)
        seq.append(nxt)
    golden = {
        "description": "tiny random llama GGUF, F32, no ffn_gate (plain SiLU FFN); float64 numpy reference",
        "producer": "tools/make_plain_ffn_golden.py (tools/gguf_common.reference_forward)",
        "model": path.name,
        "hparams": g.HP,
        "tokens": tokens,
        "logits": {"file": f"logits_{name}.f32", "dtype": "float32", "shape": [len(tokens), g.HP["n_vocab"]]},
        "greedy": {"n": len(greedy), "tokens": greedy},
    }
    (out / f"golden_{name}.json").write_text(json.dumps(golden, indent=1) + "\n")
    print(f"[{name}] {path.stat().st_size} bytes, greedy={greedy}")


if __name__ == "__main__":
    main()
