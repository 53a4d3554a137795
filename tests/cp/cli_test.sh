#!/usr/bin/env bash
# tessera generate --cp end to end (docs/CONTEXT_PARALLEL.md): the needle model over a
# CP ring answers with the needle, exactly like the single-process run (same text and
# ids), alone and with TP or PP around the ring; bad CP flags fail with a message saying why.
#   cli_test.sh TESSERA NEEDLE_MODEL HF_TINY_LLAMA TOKENIZER_GGUF
set -uo pipefail
T=$1 NEEDLE=$2 HF=$3 TOKGGUF=$4
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
MPI=(mpiexec --oversubscribe --allow-run-as-root)
fail=0

# A haystack of ~6K tokens of lowercase text with one needle 'K' at 40%, then '?'.
words=(the cat and an in er th dog sat on mat a big red)
{
  for i in $(seq 1 3000); do
    [ "$i" -eq 1200 ] && printf 'K '
    printf '%s ' "${words[$((i * 7 % 14))]}"
  done
  printf '?'
} >"$TMP/needle.txt"

run() {  # name, ranks, flags...
  local name=$1 n=$2; shift 2
  if [ "$n" = 1 ]; then
    "$T" generate --threads 1 --no-echo --show-ids "$@" >"$TMP/$name.out" 2>"$TMP/$name.err"
  else
    "${MPI[@]}" -n "$n" "$T" generate --threads 1 --no-echo --show-ids "$@" >"$TMP/$name.out" 2>"$TMP/$name.err"
  fi
  local rc=$?
  [ $rc -eq 0 ] || { echo "FAIL $name: exit $rc"; tail -5 "$TMP/$name.err"; fail=1; }
}
same() {  # a, b: same text and the same generated ids
  if cmp -s "$TMP/$1.out" "$TMP/$2.out" && [ "$(grep '^generated ids' "$TMP/$1.err")" = "$(grep '^generated ids' "$TMP/$2.err")" ]; then
    echo "ok   $2 == $1 ($(grep '^generated ids' "$TMP/$2.err"))"
  else
    echo "FAIL $2 differs from $1"; diff "$TMP/$1.out" "$TMP/$2.out" | head -5; fail=1
  fi
}

NFLAGS=(--model "$NEEDLE" --prompt-file "$TMP/needle.txt" --max-tokens 1 --prefill-chunk 1024)
run needle_1 1 "${NFLAGS[@]}"
if grep -q "^generated ids: 78$" "$TMP/needle_1.err"; then echo "ok   needle answered alone (K = id 78)";
else echo "FAIL needle alone: $(grep '^generated ids' "$TMP/needle_1.err")"; fail=1; fi
run needle_cp2 2 "${NFLAGS[@]}" --cp 2
same needle_1 needle_cp2
run needle_cp4 4 "${NFLAGS[@]}" --cp 4 --prefill-chunk 4096
same needle_1 needle_cp4

# A real (random, transformers-made) model: greedy text identical over TP 2 x CP 2 and PP 2 x CP 2.
HFLAGS=(--model "$HF" --tokenizer "$TOKGGUF" --prompt "the cat and the dog sat on the mat" --max-tokens 24)
run hf_1 1 "${HFLAGS[@]}"
run hf_tp2cp2 4 "${HFLAGS[@]}" --tp 2 --cp 2 --prefill-chunk 8
same hf_1 hf_tp2cp2
run hf_pp2cp2 4 "${HFLAGS[@]}" --pp 2 --cp 2 --prefill-chunk 8
same hf_1 hf_pp2cp2

expect_fail() {  # name, expected stderr substring, command...
  local name=$1 want=$2; shift 2
  timeout 60 "$@" >"$TMP/out" 2>"$TMP/err"
  local rc=$?
  if [ $rc -ne 0 ] && [ $rc -ne 124 ] && grep -qF -- "$want" "$TMP/err"; then echo "ok   $name (exit $rc)";
  else echo "FAIL $name (exit $rc, wanted '$want'):"; tail -5 "$TMP/err"; fail=1; fi
}
expect_fail "--cp 0" "--cp must be in [1, 4096]" "$T" generate --model "$NEEDLE" --prompt hi --cp 0
expect_fail "world size that does not match tp x pp x cp" "needs 4 ranks" \
  "${MPI[@]}" -n 2 "$T" generate --model "$NEEDLE" --prompt hi --cp 4 --threads 1
expect_fail "bench with --cp" "does not run with --cp > 1 yet" "$T" bench --model "$NEEDLE" --cp 2
exit $fail
