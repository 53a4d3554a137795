#!/usr/bin/env bash
# tools/gpu_check.sh: the one-shot GPU check of the CUDA backend (docs/GPU.md).
#
# On a GPU machine with only CUDA, CMake, ninja and a C++ compiler (no Debian packages,
# no network), in about 5-8 minutes:
#   1. builds tools/gpu_check/ (the CUDA backend, its tests, gpu_bench) for this GPU's
#      architecture, with GoogleTest from .gpu_check/googletest (tools/gpu_check_prepare.sh);
#   2. runs cuda_ops_test (every device op vs the CPU reference) and cuda_model_test
#      (stories260K: float64-reference logits, published greedy text, CPU tokens); a
#      SKIPPED test counts as a failure here: on a GPU machine nothing may skip;
#   3. runs gpu_bench: copy bandwidth and BF16 GEMM rate measured on the card, then
#      decode GB/s and prefill TFLOP/s of Llama-3-8B shapes (random BF16 weights drawn on
#      the device), and prints the table.
# Logs go to $OUT (the device tool's result folder) or build-gpu-check/out: summary.txt,
# env.txt, build.log, cuda_ops_test.log, cuda_model_test.log, bench.txt (6 files).
#
#   tools/gpu_check.sh                 # everything
#   tools/gpu_check.sh --build-only    # step 1 only (checks the build on a machine without a GPU)
#   tools/gpu_check.sh --quick         # small benchmark sizes (a smoke run)
# Environment: CUDA_ARCH (default: the GPU's compute capability, else "80;90"),
#   BUILD_DIR (default /tmp/tessera-gpu-check), JOBS (default nproc), GTEST_SOURCE_DIR,
#   GTEST_FILTER (run only matching tests, e.g. 'CudaAttention*'), SKIP_BENCH=1,
#   BENCH_ARGS (extra gpu_bench flags, e.g. '--prompt 1024').
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${OUT:-$root/build-gpu-check/out}
build=${BUILD_DIR:-/tmp/tessera-gpu-check}
jobs=${JOBS:-$(nproc)}
mode=all
bench_args=()
for a in "$@"; do
  case $a in
    --build-only) mode=build ;;
    --quick) bench_args+=(--quick) ;;
    *) echo "usage: $0 [--build-only] [--quick]" >&2; exit 2 ;;
  esac
done
mkdir -p "$out"
summary=$out/summary.txt
: >"$summary"
say() { echo "$*" | tee -a "$summary"; }
t_start=$(date +%s)
step_time() { echo "$(( $(date +%s) - t_start ))s"; }

say "== tessera GPU check ($(date -u +%FT%TZ), $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo '?'))"
export PATH=/usr/local/cuda/bin:$PATH
{ nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap --format=csv,noheader 2>&1 || true
  nvcc --version | tail -2; cmake --version | head -1; ninja --version; ${CXX:-c++} --version | head -1; } \
  | tee "$out/env.txt" | sed 's/^/   /' | tee -a "$summary"

arch=${CUDA_ARCH:-}
if [[ -z $arch ]]; then
  cc=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1 | tr -d ' .')
  arch=${cc:-"80;90"}
fi
gtest=${GTEST_SOURCE_DIR:-$root/.gpu_check/googletest}
say "== build: arch $arch, $jobs jobs, $build"
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
if ! cmake -S "$root/tools/gpu_check" -B "$build" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release \
     "-DCMAKE_CUDA_ARCHITECTURES=$arch" "-DGTEST_SOURCE_DIR=$gtest" >"$out/build.log" 2>&1; then
  tail -30 "$out/build.log"; say "FAIL: configure (see build.log)"; exit 1
fi
if ! cmake --build "$build" -j "$jobs" >>"$out/build.log" 2>&1; then
  grep -E "error|Error" -A5 "$out/build.log" | head -60; say "FAIL: build (see build.log)"; exit 1
fi
say "   built in $(step_time)"
[[ $mode == build ]] && { say "== build only: done"; exit 0; }

status=0
for t in cuda_ops_test cuda_model_test; do
  bin=$build/tests/cuda/$t
  log=$out/$t.log
  timeout 300 "$bin" --gtest_color=no ${GTEST_FILTER:+--gtest_filter="$GTEST_FILTER"} >"$log" 2>&1
  rc=$?
  # Per-test result lines end in "(N ms)"; gtest's closing lists repeat the names without.
  passed=$(grep -cE '^\[       OK \] .* \([0-9]+ ms\)$' "$log")
  failed=$(grep -cE '^\[  FAILED  \] .* \([0-9]+ ms\)$' "$log")
  skipped=$(grep -cE '^\[  SKIPPED \] .* \([0-9]+ ms\)$' "$log")
  verdict=ok
  if [[ $rc -ne 0 || $failed -ne 0 || $skipped -ne 0 ]]; then verdict=FAIL; status=1; fi
  if [[ $passed -eq 0 && -z ${GTEST_FILTER:-} ]]; then verdict=FAIL; status=1; fi  # nothing ran
  say "== $t: $verdict ($passed passed, $failed failed, $skipped skipped, rc $rc) at $(step_time)"
  grep -m1 -A1 ': Skipped$' "$log" | sed 's/^/   /' | tee -a "$summary"   # the skip reason, once
  grep -E '^\[  FAILED  \] .* \([0-9]+ ms\)$|Failure$|error:' "$log" | head -20 | sed 's/^/   /' | tee -a "$summary"
  # Failed GPU cases: rerun them under compute-sanitizer (bad accesses, races), appended to the log.
  if [[ $failed -ne 0 ]] && command -v compute-sanitizer >/dev/null; then
    filter=$(grep -E '^\[  FAILED  \] .* \([0-9]+ ms\)$' "$log" | sed -E 's/^\[  FAILED  \] ([^ ,]+).*/\1/' | paste -sd: -)
    for tool in memcheck racecheck; do
      echo "==== compute-sanitizer --tool $tool --gtest_filter=$filter" >>"$log"
      timeout 150 compute-sanitizer --tool $tool --print-limit 10 "$bin" --gtest_filter="$filter" >>"$log" 2>&1
      grep -E '^========= (ERROR SUMMARY|Invalid|.*hazard)' "$log" | tail -3 | sed "s/^/   $tool: /" | tee -a "$summary"
    done
  fi
done

if [[ ${SKIP_BENCH:-0} != 1 ]]; then
  read -r -a extra <<<"${BENCH_ARGS:-}"
  bench_args+=("${extra[@]}")
  say "== gpu_bench ${bench_args[*]:-}"
  timeout 240 "$build/bench/cuda/gpu_bench" "${bench_args[@]}" >"$out/bench.txt" 2>&1
  rc=$?
  tee -a "$summary" <"$out/bench.txt"
  [[ $rc -ne 0 ]] && { say "FAIL: gpu_bench rc $rc"; status=1; }
fi
say "== done in $(step_time): $([[ $status -eq 0 ]] && echo PASS || echo FAIL)"
exit $status
