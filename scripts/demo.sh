#!/usr/bin/env bash
# The main job on a fresh machine: install, build, then generate text from the bundled
# stories260K model (greedy, llama2.c semantics, so the output is the published one).
#   scripts/demo.sh [extra tessera generate flags...]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
BUILD_DIR=${BUILD_DIR:-build}
"$BUILD_DIR"/tessera generate --model assets/models/stories260K/stories260K.gguf \
  --prompt "Once upon a time" --max-tokens 200 --timings "$@"
