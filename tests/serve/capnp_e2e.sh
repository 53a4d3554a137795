#!/usr/bin/env bash
# End to end: the Cap'n Proto client API of `tessera serve --capnp` (schemas/client.capnp)
# driven by examples/capnp_client.cpp on the bundled model:
#   greedy text equals `tessera generate --no-echo` (prompt text, and a seeded sample
#   equals the HTTP API's for the same seed); cancel ends the stream with "cancelled"
#   and the server keeps serving; bad requests are refused with the tessera message;
#   stats and models answer; an API key is checked.
# usage: capnp_e2e.sh TESSERA CLIENT MODEL
set -euo pipefail
TESSERA=$1 CLIENT=$2 MODEL=$3
NAME=$(basename "$MODEL" .gguf)
WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; for f in "$WORK"/server*.log; do echo "--- $f"; tail -20 "$f"; done >&2; exit 1; }

start_server() {  # start_server LOG extra-flags...  -> HTTP_PORT, CAPNP
  local log=$1; shift
  "$TESSERA" serve --model "$MODEL" --threads 1 --http 127.0.0.1:0 --capnp 127.0.0.1:0 "$@" >"$log" 2>&1 &
  SERVER_PID=$!
  PIDS+=("$SERVER_PID")
  for _ in $(seq 1 300); do
    CAPNP=$(sed -n 's/.*Cap.n Proto API on \([0-9.]*:[0-9]*\).*/\1/p' "$log" | head -1)
    HTTP_PORT=$(sed -n 's/.*on http:\/\/127.0.0.1:\([0-9]*\).*/\1/p' "$log" | head -1)
    [ -n "$CAPNP" ] && [ -n "$HTTP_PORT" ] && return 0
    kill -0 "$SERVER_PID" 2>/dev/null || fail "server exited during start-up"
    sleep 0.2
  done
  fail "server did not start within 60 s"
}

t0=$(date +%s)
start_server "$WORK/server.log"
echo "server up, capnp on $CAPNP after $(( $(date +%s) - t0 )) s"

# ---- greedy equals tessera generate ----
PROMPTS=("Once upon a time" "The little dog" "Lily and Tom went to the park")
MAXTOK=(40 17 64)
for i in "${!PROMPTS[@]}"; do
  "$TESSERA" generate --model "$MODEL" --threads 1 --prompt "${PROMPTS[$i]}" --max-tokens "${MAXTOK[$i]}" \
    --temperature 0 --no-echo 2>/dev/null | python3 -c 'import sys; sys.stdout.write(sys.stdin.read()[:-1])' \
    >"$WORK/expect$i"
  "$CLIENT" --connect "$CAPNP" --prompt "${PROMPTS[$i]}" --max-tokens "${MAXTOK[$i]}" >"$WORK/got$i" 2>"$WORK/err$i" \
    || fail "client $i: $(cat "$WORK/err$i")"
  cmp -s "$WORK/got$i" "$WORK/expect$i" || fail "capnp completion $i differs from generate: '$(cat "$WORK/got$i")' vs '$(cat "$WORK/expect$i")'"
  grep -Eq 'finish: (stop|length) \(prompt [0-9]+ tokens, completion [0-9]+ tokens' "$WORK/err$i" || fail "finish $i: $(cat "$WORK/err$i")"
done
echo "greedy capnp completions equal tessera generate"

# ---- a seeded sample equals the HTTP API's for the same seed ----
"$CLIENT" --connect "$CAPNP" --prompt "Once upon a time" --max-tokens 24 --temperature 0.8 --seed 7 >"$WORK/seeded" 2>/dev/null \
  || fail "seeded client"
curl -s -H 'Content-Type: application/json' "http://127.0.0.1:$HTTP_PORT/v1/completions" \
  --data-binary "{\"model\":\"$NAME\",\"prompt\":\"Once upon a time\",\"max_tokens\":24,\"temperature\":0.8,\"seed\":7}" \
  | python3 -c 'import json,sys; sys.stdout.write(json.load(sys.stdin)["choices"][0]["text"])' >"$WORK/seeded_http"
cmp -s "$WORK/seeded" "$WORK/seeded_http" || fail "seeded capnp '$(cat "$WORK/seeded")' != http '$(cat "$WORK/seeded_http")'"
echo "a seeded capnp sample equals the HTTP API's"

# ---- cancel: the stream ends with "cancelled", the server keeps serving ----
"$CLIENT" --connect "$CAPNP" --prompt "Once upon a time" --max-tokens 1000 --temperature 1 --seed 1 --cancel-after 3 \
  >"$WORK/cancel" 2>"$WORK/cancel_err" || fail "cancel client: $(cat "$WORK/cancel_err")"
grep -q 'finish: cancelled' "$WORK/cancel_err" || fail "cancel did not end the stream as cancelled: $(cat "$WORK/cancel_err")"
got=$(sed -n 's/.*completion \([0-9]*\) tokens.*/\1/p' "$WORK/cancel_err")
[ "$got" -lt 1000 ] || fail "cancelled request still generated $got tokens"
"$CLIENT" --connect "$CAPNP" --prompt "${PROMPTS[0]}" --max-tokens "${MAXTOK[0]}" >"$WORK/after_cancel" 2>/dev/null \
  && cmp -s "$WORK/after_cancel" "$WORK/expect0" || fail "the server did not serve correctly after a cancel"
echo "cancel ends the stream as cancelled ($got tokens), the server keeps serving"

# ---- bad requests: refused with the tessera message naming the field ----
expect_error() {  # expect_error PATTERN client-flags...
  local pattern=$1; shift
  if "$CLIENT" --connect "$CAPNP" "$@" >/dev/null 2>"$WORK/bad_err"; then fail "accepted: $*"; fi
  grep -Eq "$pattern" "$WORK/bad_err" || fail "error for '$*' does not match '$pattern': $(cat "$WORK/bad_err")"
}
expect_error 'tessera:invalid_input.*max_tokens' --max-tokens -5
expect_error 'tessera:invalid_input.*max_tokens' --max-tokens 100000
expect_error 'tessera:not_found.*model' --model no-such-model
expect_error 'tessera:invalid_input.*temperature' --temperature -1
expect_error 'tessera:invalid_input.*stop' --stop a --stop b --stop c --stop d --stop e
"$CLIENT" --connect "$CAPNP" --prompt "One day" --max-tokens 5 >/dev/null 2>&1 || fail "the server did not serve after bad requests"
echo "bad requests refused with their field named; the server keeps serving"

# ---- chat, stop strings, stats, models ----
"$CLIENT" --connect "$CAPNP" --chat --prompt "Hi" --max-tokens 8 >/dev/null 2>"$WORK/chat_err" || fail "chat: $(cat "$WORK/chat_err")"
"$CLIENT" --connect "$CAPNP" --prompt "${PROMPTS[0]}" --max-tokens "${MAXTOK[0]}" --stop "$(cut -c5-9 "$WORK/expect0")" \
  >"$WORK/stopped" 2>"$WORK/stop_err" || fail "stop: $(cat "$WORK/stop_err")"
grep -q 'finish: stop' "$WORK/stop_err" && [ "$(cat "$WORK/stopped")" = "$(cut -c1-4 "$WORK/expect0")" ] \
  || fail "stop string: got '$(cat "$WORK/stopped")' ($(cat "$WORK/stop_err"))"
"$CLIENT" --connect "$CAPNP" --stats >"$WORK/stats" || fail "stats"
grep -Eq '^steps [1-9]' "$WORK/stats" && grep -Eq '^submitted [1-9]' "$WORK/stats" || fail "stats: $(cat "$WORK/stats")"
"$CLIENT" --connect "$CAPNP" --models >"$WORK/models" || fail "models"
grep -q "^$NAME context" "$WORK/models" || fail "models: $(cat "$WORK/models")"
echo "chat, stop strings, stats and models answer"

# ---- top logprobs and echo (prompt logprobs) equal the HTTP API's ----
"$CLIENT" --connect "$CAPNP" --prompt "One day" --max-tokens 5 --show-tokens --top-logprobs 2 >/dev/null \
  2>"$WORK/top_err" || fail "top logprobs: $(cat "$WORK/top_err")"
"$CLIENT" --connect "$CAPNP" --prompt "Once upon a time" --max-tokens 0 --echo --top-logprobs 1 >/dev/null \
  2>"$WORK/echo_err" || fail "echo: $(cat "$WORK/echo_err")"
curl -s -H 'Content-Type: application/json' "http://127.0.0.1:$HTTP_PORT/v1/completions" \
  --data-binary "{\"model\":\"$NAME\",\"prompt\":\"Once upon a time\",\"max_tokens\":0,\"echo\":true,\"logprobs\":1}" >"$WORK/echo_http"
python3 - "$WORK/top_err" "$WORK/echo_err" "$WORK/echo_http" <<'PY' || fail "top logprobs / echo"
import json, math, re, sys
top = [l for l in open(sys.argv[1]) if l.startswith("[token ")]
assert len(top) == 5, top
for l in top:  # greedy: the most likely alternative is the token itself
    m = re.match(r"\[token (\d+) logprob ([^\s\]]+) \| (\d+) (\S+) \| (\d+) ([^\s\]]+)\]", l)
    assert m and m.group(1) == m.group(3) and float(m.group(2)) <= 0, l
prompt = [re.match(r"\[prompt (\d+) logprob ([^\s\]]+)", l) for l in open(sys.argv[2]) if l.startswith("[prompt ")]
http = json.load(open(sys.argv[3]))["choices"][0]["logprobs"]["token_logprobs"]
assert len(prompt) == len(http) and len(prompt) >= 2, (len(prompt), len(http))
assert math.isnan(float(prompt[0].group(2))) and http[0] is None
for m, h in zip(prompt[1:], http[1:]):
    assert abs(float(m.group(2)) - h) < 1e-4, (m.group(0), h)
PY
grep -q '^verify_passes 0' "$WORK/stats" || fail "stats: no speculative counters: $(cat "$WORK/stats")"
echo "top logprobs and echo answer as over HTTP"

# ---- API key ----
kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true
start_server "$WORK/server_key.log" --api-key sekret
expect_error 'invalid API key' --prompt "One day" --max-tokens 3
"$CLIENT" --connect "$CAPNP" --api-key sekret --prompt "One day" --max-tokens 3 >/dev/null 2>&1 || fail "the right API key was refused"
echo "API key checked"
echo "capnp e2e passed in $(( $(date +%s) - t0 )) s"
