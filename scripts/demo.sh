#!/usr/bin/env bash
# The main job on a fresh machine: install, build, then generate text from the bundled
# stories260K model split over 4 MPI ranks (tensor parallel 2 x pipeline parallel 2).
# The greedy output equals the single-process run (tests/distributed checks that, and
# that `--steps 256 --sampler llama2c` reproduces llama2.c's published text).
#   scripts/demo.sh [extra tessera generate flags...]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
BUILD_DIR=${BUILD_DIR:-build}
# Open MPI refuses to run as root unless told, and needs --oversubscribe for more
# ranks than cores.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 GLOG_minloglevel=1
mpiexec -n 4 --oversubscribe --mca btl self,vader "$BUILD_DIR"/tessera generate \
  --model assets/models/stories260K/stories260K.gguf --tp 2 --pp 2 --threads 1 \
  --prompt "Once upon a time" --max-tokens 200 --timings "$@"
