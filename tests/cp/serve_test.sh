#!/usr/bin/env bash
# tessera serve on a CP deployment (docs/CONTEXT_PARALLEL.md): long needle prompts sent
# at the same time to `mpiexec -n 4 tessera serve --cp 4` (the scheduler batches them,
# each split over the ring) answer with their needles; a transformers model over
# TP 2 x CP 2 completes prompts exactly like `tessera generate`, several at once.
#   serve_test.sh TESSERA NEEDLE_MODEL HF_TINY_LLAMA TOKENIZER_GGUF
set -uo pipefail
T=$1 NEEDLE=$2 HF=$3 TOKGGUF=$4
TMP=$(mktemp -d)
PID=
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null; wait 2>/dev/null; rm -rf "$TMP"; }
trap cleanup EXIT
fail() { echo "FAIL: $*"; tail -20 "$TMP/server.log"; exit 1; }
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
start() {  # ranks, flags...
  local n=$1; shift
  PORT=$(port)
  mpiexec --oversubscribe --allow-run-as-root -n "$n" "$T" serve --threads 1 --http 127.0.0.1:$PORT "$@" \
    >"$TMP/server.log" 2>&1 &
  PID=$!
  for _ in $(seq 1 300); do
    curl -sf "http://127.0.0.1:$PORT/health" >/dev/null 2>&1 && return 0
    kill -0 "$PID" 2>/dev/null || fail "server exited during start-up"
    sleep 0.2
  done
  fail "no /health within 60 s"
}
complete() {  # model-name prompt-file max_tokens out
  python3 - "$1" "$2" "$3" "http://127.0.0.1:$PORT/v1/completions" >"$4" <<'PY'
import json, sys, urllib.request
body = json.dumps({"model": sys.argv[1], "prompt": open(sys.argv[2]).read(), "max_tokens": int(sys.argv[3]),
                   "temperature": 0}).encode()
req = urllib.request.Request(sys.argv[4], body, {"Content-Type": "application/json"})
sys.stdout.write(json.load(urllib.request.urlopen(req, timeout=240))["choices"][0]["text"])
PY
}

# Needles A, F and P in ~6K-token haystacks at different depths.
words=(the cat and an in er th dog sat on mat a big red)
i=0
for needle in A F P; do
  i=$((i + 1))
  { for k in $(seq 1 3000); do
      [ "$k" -eq $((i * 900)) ] && printf '%s ' "$needle"
      printf '%s ' "${words[$(((k + i) * 7 % 14))]}"
    done; printf '?'; } >"$TMP/needle_$needle.txt"
done
start 4 --model "$NEEDLE" --cp 4 --kv-tokens 65536 --max-batch-tokens 2048
CLIENTS=()
for needle in A F P; do complete needle "$TMP/needle_$needle.txt" 1 "$TMP/got_$needle" & CLIENTS+=($!); done
wait "${CLIENTS[@]}"
for needle in A F P; do
  [ "$(cat "$TMP/got_$needle")" = "$needle" ] || fail "needle $needle: got '$(cat "$TMP/got_$needle")'"
done
echo "ok   3 concurrent needle prompts over cp 4 answered A F P"
kill "$PID"; wait "$PID" 2>/dev/null; PID=

PROMPTS=("the cat and the dog sat on the mat" "a big red dog" "the mat")
for j in 0 1 2; do
  printf '%s' "${PROMPTS[$j]}" >"$TMP/p$j"
  "$T" generate --model "$HF" --tokenizer "$TOKGGUF" --threads 1 --no-echo --max-tokens 20 --prompt "${PROMPTS[$j]}" \
    2>/dev/null | python3 -c 'import sys; sys.stdout.write(sys.stdin.read()[:-1])' >"$TMP/want$j"
done
start 4 --model "$HF" --tokenizer "$TOKGGUF" --tp 2 --cp 2 --kv-tokens 4096 --max-batch-tokens 16
CLIENTS=()
for j in 0 1 2; do complete "$(basename "$HF")" "$TMP/p$j" 20 "$TMP/got$j" & CLIENTS+=($!); done
wait "${CLIENTS[@]}"
for j in 0 1 2; do
  cmp -s "$TMP/got$j" "$TMP/want$j" || fail "prompt $j: '$(cat "$TMP/got$j")' vs generate '$(cat "$TMP/want$j")'"
done
echo "ok   3 concurrent completions over tp 2 x cp 2 equal tessera generate"
