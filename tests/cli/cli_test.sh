#!/usr/bin/env bash
# End-to-end checks of the tessera binary: the published texts through the CLI, --help,
# inspect, and bad input (clear message naming the problem, non-zero exit, no crash).
#   cli_test.sh TESSERA_BINARY ASSETS_DIR
set -uo pipefail
T=$1
M=$2/models/stories260K
REF=$M/reference
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fail=0
check() {  # name, condition exit status
  if [ "$2" -eq 0 ]; then echo "ok   $1"; else echo "FAIL $1"; fail=1; fi
}
expect_error() {  # name, expected substring, command...
  local name=$1 want=$2; shift 2
  "$@" >"$TMP/out" 2>"$TMP/err"
  local rc=$?
  if [ $rc -ne 0 ] && [ $rc -lt 128 ] && grep -qF -- "$want" "$TMP/err"; then
    echo "ok   $name"
  else
    echo "FAIL $name (rc=$rc, wanted '$want' in stderr):"; cat "$TMP/err"; fail=1
  fi
}

for model in stories260K.bin stories260K.gguf; do
  "$T" generate --model "$M/$model" --steps 256 --sampler llama2c --threads 2 >"$TMP/g.txt"
  head -c -1 "$TMP/g.txt" | cmp -s - "$REF/greedy_n256.txt"; check "greedy 256 steps from $model" $?
  "$T" generate --model "$M/$model" --steps 200 --sampler llama2c --temperature 1 --top-p 0.95 --seed 42 \
    --threads 1 >"$TMP/s.txt"
  head -c -1 "$TMP/s.txt" | cmp -s - "$REF/t1.0_p0.95_seed42_n200.txt"; check "seeded top-p sample from $model" $?
done

"$T" generate --model "$M/stories260K.gguf" --prompt "Once upon a time" --max-tokens 12 --timings \
  >"$TMP/p.txt" 2>"$TMP/p.err"
grep -q "^Once upon a time, there was a little girl named Lily" "$TMP/p.txt"; check "prompt continuation" $?
grep -q "decode .* tok/s" "$TMP/p.err"; check "--timings prints tok/s" $?

"$T" generate --help >"$TMP/help.txt"; check "generate --help exits 0" $?
for f in --model --prompt --max-tokens --temperature --top-k --top-p --seed --threads --timings --sampler; do
  grep -q -- "$f" "$TMP/help.txt" || { echo "FAIL --help lacks $f"; fail=1; }
done

"$T" inspect "$M/stories260K.gguf" >"$TMP/i.txt"; check "inspect gguf exits 0" $?
grep -q "blk.4.ffn_down.weight" "$TMP/i.txt"; check "inspect lists tensors" $?
"$T" inspect "$M/stories260K.bin" >"$TMP/i2.txt"; check "inspect llama2.c exits 0" $?

# Bad input.
expect_error "missing model file" "nope.gguf" "$T" generate --model "$TMP/nope.gguf" --prompt hi
expect_error "unknown flag" "--bogus" "$T" generate --model "$M/stories260K.gguf" --bogus
expect_error "non-numeric flag" "--max-tokens" "$T" generate --model "$M/stories260K.gguf" --max-tokens ten
expect_error "negative temperature" "temperature" "$T" generate --model "$M/stories260K.gguf" --temperature -1
head -c 1000 "$M/stories260K.gguf" >"$TMP/trunc.gguf"
expect_error "truncated gguf" "trunc.gguf" "$T" generate --model "$TMP/trunc.gguf" --prompt hi
printf 'NOTAMODEL%.0s' {1..100} >"$TMP/junk.gguf"
expect_error "wrong magic" "junk.gguf" "$T" generate --model "$TMP/junk.gguf" --prompt hi
head -c 5000 "$M/stories260K.bin" >"$TMP/trunc.bin"
expect_error "truncated llama2.c" "trunc.bin" "$T" generate --model "$TMP/trunc.bin" --tokenizer "$M/tok512.bin"
expect_error "unknown command" "unknown command" "$T" frobnicate
# Speculative serving flags (docs/SPECULATIVE.md, "In tessera serve"): refused before serving.
S=("$T" serve --model "$M/stories260K.gguf" --http 127.0.0.1:0)
expect_error "serve --draft-k-adaptive without --draft" "need --draft" "${S[@]}" --draft-k-adaptive
expect_error "serve adaptive K start above 8" "must be in 1..8, got 12" "${S[@]}" --draft ngram --draft-k 12 --draft-k-adaptive
expect_error "serve negative batch cap" "draft-max-batch-tokens must be >= 0" "${S[@]}" --draft ngram --draft-max-batch-tokens -1

exit $fail
