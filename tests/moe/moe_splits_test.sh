#!/usr/bin/env bash
# Every TP x PP x EP split of a MoE model gives the single-rank run's greedy tokens
# exactly and its logits within a tight tolerance; with a reference text, the
# single-rank run and every split also reproduce it (llama2.c's published stories260K
# output: the permuted-experts fixtures compute the dense FFN).
#   moe_splits_test.sh TESSERA COMPARE_LOGITS MODEL "TPxPPxEP ..." [REFERENCE_TEXT|-] [TOKENIZER]
set -uo pipefail
T=$1 CMP=$2 MODEL=$3 SPLITS=$4 REF=${5:-}
[ "$REF" = "-" ] && REF=""
TOK=()
[ -n "${6:-}" ] && TOK=(--tokenizer "$6")
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
MPI=(mpiexec --oversubscribe --allow-run-as-root)
TOKENS="1 7 42 100 5 77 3 9 150 12 33 61 200 17 88 4"
fail=0

"$T" generate --model "$MODEL" "${TOK[@]}" --prompt "Once upon a time" --max-tokens 40 --threads 1 --show-ids \
  --no-echo >"$TMP/ref.txt" 2>"$TMP/ref.err" || { echo "FAIL single-rank run"; cat "$TMP/ref.err"; exit 1; }
grep "generated ids" "$TMP/ref.err" >"$TMP/ref.ids"
"$T" score --model "$MODEL" --tokens "$TOKENS" --logits-out "$TMP/ref.f32" --threads 1 >/dev/null \
  || { echo "FAIL single-rank score"; exit 1; }
if [ -n "$REF" ]; then
  "$T" generate --model "$MODEL" --steps 256 --sampler llama2c --threads 1 2>/dev/null | head -c -1 | cmp -s - "$REF" \
    && echo "ok   single rank: published text" || { echo "FAIL single rank: published text differs"; fail=1; }
fi

for split in $SPLITS; do
  IFS=x read -r tp pp ep <<<"$split"
  n=$((tp * pp)) flags=(--tp "$tp" --pp "$pp" --ep "$ep") name="tp $tp pp $pp ep $ep"
  if ! timeout 120 "${MPI[@]}" -n $n "$T" generate --model "$MODEL" "${TOK[@]}" --prompt "Once upon a time" --max-tokens 40 \
      --threads 1 --show-ids --no-echo "${flags[@]}" >"$TMP/out.txt" 2>"$TMP/out.err"; then
    echo "FAIL $name: generate exited non-zero"; grep -v "^I" "$TMP/out.err" | tail -5; fail=1; continue
  fi
  if grep "generated ids" "$TMP/out.err" | cmp -s - "$TMP/ref.ids" && cmp -s "$TMP/out.txt" "$TMP/ref.txt"; then
    echo "ok   $name: greedy tokens and text identical"
  else
    echo "FAIL $name: greedy differs"; grep "generated ids" "$TMP/out.err" "$TMP/ref.ids"; fail=1
  fi
  if [ -n "$REF" ]; then
    timeout 120 "${MPI[@]}" -n $n "$T" generate --model "$MODEL" --steps 256 --sampler llama2c --threads 1 \
      "${flags[@]}" 2>/dev/null | head -c -1 | cmp -s - "$REF" \
      && echo "ok   $name: published text" || { echo "FAIL $name: published text differs"; fail=1; }
  fi
  timeout 120 "${MPI[@]}" -n $n "$T" score --model "$MODEL" --tokens "$TOKENS" --logits-out "$TMP/out.f32" \
    --threads 1 "${flags[@]}" >/dev/null 2>"$TMP/score.err" || { echo "FAIL $name: score"; tail -3 "$TMP/score.err"; fail=1; continue; }
  if msg=$("$CMP" "$TMP/ref.f32" "$TMP/out.f32" 1e-5); then
    echo "ok   $name: logits $msg"
  else
    echo "FAIL $name: logits $msg"; fail=1
  fi
done
exit $fail
