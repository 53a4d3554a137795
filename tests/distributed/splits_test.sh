#!/usr/bin/env bash
# Every tensor x pipeline split of a model gives the single-rank run's greedy tokens
# exactly and its logits within a tight tolerance.
#   splits_test.sh TESSERA COMPARE_LOGITS MODEL "TPxPP ..." [REFERENCE_TEXT|-] [TOKENIZER]
set -uo pipefail
T=$1 CMP=$2 MODEL=$3 SPLITS=$4 REF=${5:-}
[ "$REF" = "-" ] && REF=""
TOK=()
[ -n "${6:-}" ] && TOK=(--tokenizer "$6")
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
MPI=(mpiexec --oversubscribe --allow-run-as-root)
TOKENS="1 7 42 100 5 77 3 9 150 12 33 61"
fail=0

"$T" generate --model "$MODEL" "${TOK[@]}" --prompt "Once upon a time" --max-tokens 40 --threads 1 --show-ids \
  --no-echo >"$TMP/ref.txt" 2>"$TMP/ref.err" || { echo "FAIL single-rank run"; cat "$TMP/ref.err"; exit 1; }
grep "generated ids" "$TMP/ref.err" >"$TMP/ref.ids"
"$T" score --model "$MODEL" --tokens "$TOKENS" --logits-out "$TMP/ref.f32" --threads 1 >/dev/null \
  || { echo "FAIL single-rank score"; exit 1; }

for split in $SPLITS; do
  tp=${split%x*} pp=${split#*x} n=$((tp * pp))
  if ! timeout 120 "${MPI[@]}" -n $n "$T" generate --model "$MODEL" "${TOK[@]}" --prompt "Once upon a time" --max-tokens 40 \
      --threads 1 --show-ids --no-echo --tp $tp --pp $pp >"$TMP/out.txt" 2>"$TMP/out.err"; then
    echo "FAIL tp $tp pp $pp: generate exited non-zero"; grep -v "^I" "$TMP/out.err" | tail -5; fail=1; continue
  fi
  if grep "generated ids" "$TMP/out.err" | cmp -s - "$TMP/ref.ids" && cmp -s "$TMP/out.txt" "$TMP/ref.txt"; then
    echo "ok   tp $tp pp $pp: greedy tokens and text identical"
  else
    echo "FAIL tp $tp pp $pp: greedy differs"; grep "generated ids" "$TMP/out.err" "$TMP/ref.ids"; fail=1
  fi
  if [ -n "$REF" ]; then
    timeout 120 "${MPI[@]}" -n $n "$T" generate --model "$MODEL" --steps 256 --sampler llama2c --threads 1 \
      --tp $tp --pp $pp 2>/dev/null | head -c -1 | cmp -s - "$REF" \
      && echo "ok   tp $tp pp $pp: published text" || { echo "FAIL tp $tp pp $pp: published text differs"; fail=1; }
  fi
  timeout 120 "${MPI[@]}" -n $n "$T" score --model "$MODEL" --tokens "$TOKENS" --logits-out "$TMP/out.f32" \
    --threads 1 --tp $tp --pp $pp >/dev/null 2>"$TMP/score.err" || { echo "FAIL tp $tp pp $pp: score"; fail=1; continue; }
  if msg=$("$CMP" "$TMP/ref.f32" "$TMP/out.f32" 1e-5); then
    echo "ok   tp $tp pp $pp: logits $msg"
  else
    echo "FAIL tp $tp pp $pp: logits $msg"; fail=1
  fi
done
exit $fail
