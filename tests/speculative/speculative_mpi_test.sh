#!/usr/bin/env bash
# Speculative decoding through the CLI: greedy output identical to plain decoding for
# every draft kind, on one rank and with the target split TP=2 x PP=2 under mpirun
# (the draft runs on rank 0); sampling with a draft runs under TP (sharded verify).
#   speculative_mpi_test.sh TESSERA MODEL_BIN MODEL_GGUF
set -uo pipefail
T=$1 BIN=$2 GGUF=$3
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
MPI=(mpiexec --oversubscribe --allow-run-as-root -n 4)
ARGS=(--model "$BIN" --prompt "Once upon a time" --max-tokens 60 --threads 1 --show-ids --no-echo)
fail=0

"$T" generate "${ARGS[@]}" >"$TMP/ref.txt" 2>"$TMP/ref.err" || { echo "FAIL plain run"; cat "$TMP/ref.err"; exit 1; }
grep "generated ids" "$TMP/ref.err" >"$TMP/ref.ids"

check() {  # label, then the command
  local label=$1; shift
  if ! timeout 120 "$@" --timings >"$TMP/out.txt" 2>"$TMP/out.err"; then
    echo "FAIL $label: exited non-zero"; grep -v "^I" "$TMP/out.err" | tail -5; fail=1; return
  fi
  if grep "generated ids" "$TMP/out.err" | cmp -s - "$TMP/ref.ids" && cmp -s "$TMP/out.txt" "$TMP/ref.txt"; then
    echo "ok   $label: greedy identical; $(grep -o 'acceptance.*passes)' "$TMP/out.err")"
  else
    echo "FAIL $label: greedy differs"; grep "generated ids" "$TMP/out.err" "$TMP/ref.ids"; fail=1
  fi
}

for draft in "$GGUF" int8 ngram; do
  check "1 rank, draft $(basename "$draft")" "$T" generate "${ARGS[@]}" --draft "$draft" --draft-k 4
  check "tp 2 pp 2, draft $(basename "$draft")" "${MPI[@]}" "$T" generate "${ARGS[@]}" --tp 2 --pp 2 \
    --draft "$draft" --draft-k 3 --draft-k-adaptive
done

# Sampling under TP: the vocab-parallel rule (plain temperature) and the gathered one (top-p).
for extra in "--temperature 0.9" "--temperature 0.8 --top-p 0.9"; do
  # shellcheck disable=SC2086
  if timeout 120 "${MPI[@]}" "$T" generate "${ARGS[@]}" --tp 2 --pp 2 --draft int8 --draft-k 4 --seed 7 $extra \
      --timings >"$TMP/s.txt" 2>"$TMP/s.err" && grep -q "acceptance" "$TMP/s.err"; then
    echo "ok   tp 2 pp 2 sampling ($extra): $(grep -o 'acceptance.*passes)' "$TMP/s.err")"
  else
    echo "FAIL tp 2 pp 2 sampling ($extra)"; grep -v "^I" "$TMP/s.err" | tail -5; fail=1
  fi
done
exit $fail
