#!/bin/bash
# Speculative decoding benchmark (docs/SPECULATIVE.md, "Measurements"): for each draft
# configuration, greedy generation of every prompt with and without speculation,
# interleaved prompt by prompt so that load changes hit all configurations alike.
#
#   tools/spec_bench.sh TARGET PROMPTS_FILE MAX_TOKENS THREADS "CONFIG;CONFIG;..." [LAUNCH [COMMON]]
#
# CONFIG is the generate flags of one draft configuration (plain decoding is always run
# first as the baseline), e.g. "--draft int8 --draft-k 8". LAUNCH prefixes the command
# and COMMON is added to every run, e.g. LAUNCH "mpirun -n 4 --oversubscribe" with
# COMMON "--tp 2 --pp 2".
# Prints one markdown row per configuration: acceptance (accepted / drafted over all
# prompts), tokens per target pass, decode tok/s (all generated tokens over all decode
# seconds as `--timings` reports them), the speedup over plain decoding, and checks that
# every speculative output equals the plain one (greedy must be identical).
set -euo pipefail
TARGET=$1 PROMPTS=$2 N=$3 THREADS=$4 CONFIGS=$5 LAUNCH=${6:-} COMMON=${7:-}
BIN=${TESSERA:-build/tessera}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
IFS=';' read -r -a cfgs <<<";$CONFIGS"  # config 0 = plain
mapfile -t prompts <"$PROMPTS"
for c in "${!cfgs[@]}"; do echo "0 0 0 0 0" >"$WORK/sum$c"; done
for p in "${!prompts[@]}"; do
  for c in "${!cfgs[@]}"; do
    # shellcheck disable=SC2086
    $LAUNCH "$BIN" generate --model "$TARGET" --prompt "${prompts[$p]}" --max-tokens "$N" --threads "$THREADS" \
      --no-echo --timings --seed 1 $COMMON ${cfgs[$c]} >"$WORK/out$c.$p" 2>"$WORK/err"
    gen=$(grep -oE 'generated: [0-9]+ tokens, decode [0-9.]+ tok/s' "$WORK/err" | awk '{print $2, $5}')
    spec=$(grep -oE '\(([0-9]+) of ([0-9]+) draft tokens\), [0-9.]+ tokens per target pass \(([0-9]+) passes' "$WORK/err" |
      sed -E 's/\(([0-9]+) of ([0-9]+) draft tokens\), [0-9.]+ tokens per target pass \(([0-9]+) passes/\1 \2 \3/' || true)
    read -r n rate <<<"$gen"
    read -r acc drafted passes <<<"${spec:-0 0 0}"
    read -r s_tok s_sec s_acc s_dr s_pass <"$WORK/sum$c"
    python3 -c "import sys; t,s,a,d,p=map(float,sys.argv[1:6]); n,r,aa,dd,pp=map(float,sys.argv[6:11]); \
print(t+n, s+(n-1)/r if r>0 else s, a+aa, d+dd, p+pp)" \
      "$s_tok" "$s_sec" "$s_acc" "$s_dr" "$s_pass" "$n" "$rate" "$acc" "$drafted" "$passes" >"$WORK/sum$c"
    if [ "$c" != 0 ] && ! cmp -s "$WORK/out0.$p" "$WORK/out$c.$p"; then
      echo "MISMATCH: '${cfgs[$c]}' differs from plain decoding on prompt $p" >&2
      exit 1
    fi
  done
done
read -r _ base_sec _ _ _ <"$WORK/sum0"
echo "| draft flags | acceptance | tokens / target pass | decode tok/s | speedup |"
echo "|---|---|---|---|---|"
for c in "${!cfgs[@]}"; do
  read -r tok sec acc dr pass <"$WORK/sum$c"
  python3 -c "import sys; tok,sec,acc,dr,pas,base=map(float,sys.argv[2:8]); name=sys.argv[1] or 'none (plain)'; \
rate=(tok-${#prompts[@]})/sec; \
print(f'| {name} | ' + (f'{acc/dr:.3f}' if dr else '-') + ' | ' + (f'{(tok-${#prompts[@]})/pas:.2f}' if pas else '1') + f' | {rate:.1f} | {base/sec:.2f}x |')" \
    "${cfgs[$c]}" "$tok" "$sec" "$acc" "$dr" "$pass" "$base_sec"
done
