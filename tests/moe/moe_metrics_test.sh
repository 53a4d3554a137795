#!/usr/bin/env bash
# `tessera serve` on a MoE model, alone and split (TP 2 x PP 2 x EP 2): a greedy
# completion equals `tessera generate`, and /metrics reports the expert load of every
# layer: per-expert counters that sum to the layer's total, which is top_k x the tokens
# computed, and an imbalance gauge >= 1; the split's counts equal the single rank's.
#   moe_metrics_test.sh TESSERA MODEL LAYERS TOP_K
set -euo pipefail
TESSERA=$1 MODEL=$2 LAYERS=$3 TOPK=$4
NAME=$(basename "$MODEL" .gguf)
WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; tail -20 "$WORK/server.log" >&2; exit 1; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

want=$("$TESSERA" generate --model "$MODEL" --prompt "Once upon a time" --max-tokens 24 --temperature 0 \
  --threads 1 --no-echo 2>/dev/null)
for mode in single mpi; do
  PORT=$(free_port)
  if [ $mode = mpi ]; then
    mpiexec -n 4 --oversubscribe "$TESSERA" serve --model "$MODEL" --tp 2 --pp 2 --ep 2 --threads 1 \
      --http 127.0.0.1:$PORT >"$WORK/server.log" 2>&1 &
  else
    "$TESSERA" serve --model "$MODEL" --threads 1 --http 127.0.0.1:$PORT >"$WORK/server.log" 2>&1 &
  fi
  PID=$!
  PIDS+=("$PID")
  for _ in $(seq 1 300); do
    curl -sf "http://127.0.0.1:$PORT/health" >/dev/null 2>&1 && break
    kill -0 "$PID" 2>/dev/null || fail "$mode: server exited during start-up"
    sleep 0.2
  done
  got=$(curl -s -H 'Content-Type: application/json' "http://127.0.0.1:$PORT/v1/completions" \
    --data-binary '{"model": "'"$NAME"'", "prompt": "Once upon a time", "max_tokens": 24, "temperature": 0}' \
    | python3 -c 'import json,sys; sys.stdout.write(json.load(sys.stdin)["choices"][0]["text"])')
  [ "$got" = "$want" ] || fail "$mode: completion '$got' != generate '$want'"
  sleep 1.2  # the load is refreshed at most once a second, after a step
  curl -s -H 'Content-Type: application/json' "http://127.0.0.1:$PORT/v1/completions" \
    --data-binary '{"model": "'"$NAME"'", "prompt": "Once", "max_tokens": 2, "temperature": 0}' >/dev/null
  curl -s "http://127.0.0.1:$PORT/metrics" >"$WORK/metrics"
  python3 - "$WORK/metrics" "$LAYERS" "$TOPK" "$mode" <<'PY' || fail "$mode: /metrics"
import re, sys
text, layers, k, mode = open(sys.argv[1]).read(), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
per = {}
for l, e, v in re.findall(r'^tessera_moe_expert_tokens_total\{layer="(\d+)",expert="(\d+)"\} (\d+)$', text, re.M):
    per.setdefault(int(l), 0)
    per[int(l)] += int(v)
tot = {int(l): int(v) for l, v in re.findall(r'^tessera_moe_layer_tokens_total\{layer="(\d+)"\} (\d+)$', text, re.M)}
imb = {int(l): float(v) for l, v in re.findall(r'^tessera_moe_layer_imbalance\{layer="(\d+)"\} (\S+)$', text, re.M)}
steps_tokens = int(float(re.search(r'^tessera_step_tokens_total (\S+)$', text, re.M).group(1)))
assert sorted(per) == list(range(layers)) == sorted(tot) == sorted(imb), (sorted(per), sorted(tot))
for l in range(layers):
    assert per[l] == tot[l], (l, per[l], tot[l])
    # every token computed by a finished refresh was routed to k experts, once
    assert tot[l] > 0 and tot[l] % k == 0 and tot[l] <= k * steps_tokens, (l, tot[l], steps_tokens)
    assert imb[l] >= 1.0, imb
print(f"ok   {mode}: /metrics expert load of {layers} layers, {tot[0] // k} tokens routed, imbalance {imb[0]:.2f}")
PY
  grep '^tessera_moe_expert_tokens_total' "$WORK/metrics" >"$WORK/load_$mode"
  kill "$PID"; wait "$PID" 2>/dev/null || true
done
# The same requests route the same tokens to the same experts however the model is split.
cmp -s "$WORK/load_single" "$WORK/load_mpi" || fail "per-expert counts differ between one rank and TP2xPP2xEP2"
echo "ok   per-expert counts identical alone and split"
