#!/usr/bin/env bash
# Bad MoE input fails fast with a message naming the problem, never a crash or hang.
#   moe_bad_test.sh TESSERA FIXTURE_DIR DENSE.gguf
set -uo pipefail
T=$1 FIX=$2 DENSE=$3
MPI=(mpiexec --oversubscribe --allow-run-as-root)
fail=0
expect() {  # expect NAME PATTERN COMMAND...
  local name=$1 pat=$2; shift 2
  local out rc
  out=$(timeout 60 "$@" 2>&1); rc=$?
  if [ $rc -ne 0 ] && [ $rc -ne 124 ] && grep -q -- "$pat" <<<"$out"; then
    echo "ok   $name"
  else
    echo "FAIL $name (exit $rc): expected a message matching '$pat', got:"; tail -5 <<<"$out"; fail=1
  fi
}
expect "expert tensors disagree with expert_count" \
  "tensor blk.0.ffn_gate_inp.weight has shape \[8, 64\], expected \[6, 64\] (expert_count 6" \
  "$T" generate --model "$FIX/bad_expert_count.gguf" --prompt "Once" --max-tokens 2
expect "--ep on a dense model" "needs a mixture-of-experts model" \
  "${MPI[@]}" -n 2 "$T" generate --model "$DENSE" --prompt "Once" --max-tokens 2 --tp 2 --ep 2
expect "--ep not dividing the stage" "must divide the ranks of a pipeline stage" \
  "$T" generate --model "$FIX/stories_e8.gguf" --prompt "Once" --max-tokens 2 --tp 2 --ep 3
expect "experts not splitting over ep" "6 experts do not split evenly over ep = 4" \
  "${MPI[@]}" -n 4 "$T" generate --model "$FIX/random_e6.gguf" --prompt "Once" --max-tokens 2 --tp 4 --ep 4
exit $fail
