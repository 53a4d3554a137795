#!/usr/bin/env bash
# ctest FIXTURES_SETUP: the MoE models the tests run, generated from stories260K.
#   make_fixtures.sh MAKE_MOE_FIXTURE STORIES.gguf OUT_DIR
set -euo pipefail
G=$1 SRC=$2 OUT=$3
mkdir -p "$OUT"
"$G" permuted "$SRC" "$OUT/stories_e8.gguf" 8 2 1
"$G" permuted "$SRC" "$OUT/stories_e256.gguf" 256 2 2
"$G" random "$SRC" "$OUT/random_e512.gguf" 512 2 16 3 --shared 32
"$G" random "$SRC" "$OUT/random_e16_hash.gguf" 16 2 32 4 --router hash
"$G" random "$SRC" "$OUT/random_e8_sbase.gguf" 8 1 32 5 --router sbase --softmax-gates
"$G" random "$SRC" "$OUT/random_e6.gguf" 6 2 16 7
"$G" permuted "$SRC" "$OUT/bad_expert_count.gguf" 8 2 6 --metadata-experts 6
ls -l "$OUT"
