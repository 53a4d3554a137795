#!/usr/bin/env bash
# Context-parallel prefill benchmark (docs/BENCHMARKS.md, "Context-parallel prefill"):
# cp_bench at CP 1, 2, 4 for each model and prompt length; one line per run.
#   tools/cp_bench.sh BUILD_DIR "8192,16384,32768" MODEL [CHUNK] [CPS] [KV_BLOCK]
set -euo pipefail
BUILD=${1:-build} LENS=${2:-8192,16384,32768} MODEL=${3:-tests/data/needle/needle.gguf} CHUNK=${4:-4096}
CPS=${5:-"1 2 4"} BLOCK=${6:-256}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 GLOG_minloglevel=1 OMPI_MCA_btl=self,vader
for cp in $CPS; do
  mpiexec --oversubscribe -n "$cp" "$BUILD/bench/cp_bench" --model "$MODEL" --cp "$cp" --tokens "$LENS" \
    --chunk "$CHUNK" --threads 1 --kv-block-size "$BLOCK"
done
