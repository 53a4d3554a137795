#!/usr/bin/env bash
# RecurrentGemma benchmark (docs/BENCHMARKS.md, "Griffin / RecurrentGemma"): prefill and
# decode tokens/s and peak resident memory vs context length.
#   tools/recurrent_gemma_bench.sh TESSERA MODEL_DIR "CONTEXTS" [THREADS] [GEN]
# Prints one line per context: context, prefill tok/s, decode tok/s, max RSS (MiB).
# Prefill runs in chunks of 2048 tokens (bounded activations); each point is one
# measured run after a warm-up run (tessera bench --repeat 1).
set -euo pipefail
T=$1 MODEL=$2 CONTEXTS=$3 THREADS=${4:-2} GEN=${5:-32}
printf "%10s %12s %12s %10s\n" context prefill_tok_s decode_tok_s max_rss_mib
for n in $CONTEXTS; do
  out=$( { /usr/bin/time -f "RSS %M" "$T" bench --model "$MODEL" --prompt-tokens "$n" --gen-tokens "$GEN" --repeat 1 \
      --threads "$THREADS" --no-limits --json --kv-block-size 4096 --prefill-chunk 2048; } 2>&1 )
  pre=$(echo "$out" | grep -o '"prefill_tok_s":[0-9.e+-]*' | cut -d: -f2)
  dec=$(echo "$out" | grep -o '"decode_tok_s":[0-9.e+-]*' | cut -d: -f2)
  rss=$(echo "$out" | grep -o 'RSS [0-9]*' | cut -d' ' -f2)
  printf "%10s %12.1f %12.1f %10.1f\n" "$n" "$pre" "$dec" "$(echo "$rss / 1024" | bc -l)"
done
