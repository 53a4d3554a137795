#!/usr/bin/env bash
# End to end: `tessera serve` on the bundled model, alone (MODE=single) or split over
# 4 ranks with mpiexec (MODE=mpi, TP 2 x PP 2), driven with curl:
#   greedy completions (streaming and not) equal `tessera generate --no-echo`;
#   concurrent requests of different lengths equal their solo results;
#   a table of bad inputs each answers 4xx in OpenAI's error format naming the field,
#   and the server keeps serving; /metrics parses; a bounded load from load_client.py;
#   (single) a small queue answers 429 under overload.
# usage: serve_e2e.sh TESSERA MODEL MODE LOAD_CLIENT
set -euo pipefail
TESSERA=$1 MODEL=$2 MODE=$3 LOAD=$4
# Optional: extra flags for the main server, e.g. "--draft int8" (the whole suite then
# runs with speculative decoding and also checks its usage and metrics).
read -r -a EXTRA <<<"${5:-}"
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
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

start_server() {  # start_server LOG extra-flags...
  local log=$1; shift
  PORT=$(free_port)
  if [ "$MODE" = mpi ]; then
    mpiexec -n 4 --oversubscribe "$TESSERA" serve --model "$MODEL" --tp 2 --pp 2 --threads 1 \
      --http 127.0.0.1:$PORT "$@" >"$log" 2>&1 &
  else
    "$TESSERA" serve --model "$MODEL" --threads 1 --http 127.0.0.1:$PORT "$@" >"$log" 2>&1 &
  fi
  SERVER_PID=$!
  PIDS+=("$SERVER_PID")
  for _ in $(seq 1 300); do
    curl -sf "http://127.0.0.1:$PORT/health" >/dev/null 2>&1 && return 0
    kill -0 "$SERVER_PID" 2>/dev/null || fail "server exited during start-up"
    sleep 0.2
  done
  fail "server did not answer /health within 60 s"
}

post() {  # post PATH JSON -> body in $WORK/out, status printed
  curl -s -o "$WORK/out" -w '%{http_code}' -H 'Content-Type: application/json' \
    --data-binary "$2" "http://127.0.0.1:$PORT$1"
}
json() { python3 -c "import json,sys; d=json.load(open('$WORK/out')); print($1)"; }

t0=$(date +%s)
# Alone, the step-time bound is on and binding (stories260K steps of ~20 tokens take ~0.7 ms here), so
# the exactness checks below also cover time-sized prefill chunks and admission.
if [ "$MODE" = mpi ]; then start_server "$WORK/server.log" "${EXTRA[@]}"; else start_server "$WORK/server.log" --max-step-ms 0.3 "${EXTRA[@]}"; fi
URL="http://127.0.0.1:$PORT"
echo "server ($MODE) up on port $PORT after $(( $(date +%s) - t0 )) s"

# ---- greedy equals tessera generate ----
PROMPTS=("Once upon a time" "The little dog" "Lily and Tom went to the park" "One day")
MAXTOK=(40 17 64 5)
for i in "${!PROMPTS[@]}"; do
  "$TESSERA" generate --model "$MODEL" --threads 1 --prompt "${PROMPTS[$i]}" --max-tokens "${MAXTOK[$i]}" \
    --temperature 0 --no-echo 2>/dev/null | python3 -c 'import sys; sys.stdout.write(sys.stdin.read()[:-1])' \
    >"$WORK/expect$i"
done
for i in "${!PROMPTS[@]}"; do
  body=$(python3 -c 'import json,sys; print(json.dumps({"model":sys.argv[1],"prompt":sys.argv[2],"max_tokens":int(sys.argv[3]),"temperature":0}))' "$NAME" "${PROMPTS[$i]}" "${MAXTOK[$i]}")
  [ "$(post /v1/completions "$body")" = 200 ] || fail "completion $i: $(cat "$WORK/out")"
  json 'd["choices"][0]["text"]' | python3 -c 'import sys; sys.stdout.write(sys.stdin.read()[:-1])' >"$WORK/got$i"
  cmp -s "$WORK/got$i" "$WORK/expect$i" || fail "completion $i differs from generate: '$(cat "$WORK/got$i")' vs '$(cat "$WORK/expect$i")'"
  # streaming: the deltas concatenate to the same text, the stream ends with [DONE]
  sbody=$(python3 -c 'import json,sys; d=json.loads(sys.argv[1]); d["stream"]=True; d["stream_options"]={"include_usage":True}; print(json.dumps(d))' "$body")
  curl -sN -H 'Content-Type: application/json' --data-binary "$sbody" "$URL/v1/completions" >"$WORK/sse$i"
  python3 - "$WORK/sse$i" "$WORK/expect$i" <<'PY' || fail "stream $i"
import json, sys
lines = [l for l in open(sys.argv[1], encoding="utf-8").read().split("\n\n") if l.strip()]
assert lines[-1] == "data: [DONE]", lines[-1]
text, finish, usage = "", None, None
for l in lines[:-1]:
    assert l.startswith("data: "), l
    d = json.loads(l[6:])
    if d.get("usage"): usage = d["usage"]
    for c in d["choices"]:
        text += c["text"]
        finish = c["finish_reason"] or finish
expect = open(sys.argv[2], encoding="utf-8").read()
assert text == expect, (text, expect)
assert finish in ("stop", "length") and usage["completion_tokens"] > 0, (finish, usage)
PY
done
echo "greedy completions (plain and streamed) equal tessera generate"
if [[ " ${EXTRA[*]} " == *" --draft "* ]]; then
  # The last completion (64 tokens) was decoded speculatively: its usage says so.
  body=$(python3 -c 'import json,sys; print(json.dumps({"model":sys.argv[1],"prompt":"Once upon a time","max_tokens":64,"temperature":0}))' "$NAME")
  [ "$(post /v1/completions "$body")" = 200 ] || fail "speculative completion"
  json 'd["usage"]["speculative"]["verify_passes"] > 0 and 0 <= d["usage"]["speculative"]["accepted_tokens"] <= d["usage"]["speculative"]["draft_tokens"]' |
    grep -qx True || fail "usage.speculative missing or inconsistent: $(cat "$WORK/out")"
  # (to a file first: grep -q closing the pipe early would fail curl under pipefail)
  curl -sf "$URL/metrics" >"$WORK/spec_metrics" || fail "metrics"
  grep -qE '^tessera_speculative_tokens_total\{kind="drafted"\} [1-9]' "$WORK/spec_metrics" || fail "no drafted tokens in /metrics"
  grep -qE '^tessera_speculative_k_count [1-9]' "$WORK/spec_metrics" || fail "no K histogram in /metrics"
  if [[ " ${EXTRA[*]} " == *" --draft-k-adaptive "* ]]; then
    json '1 <= d["usage"]["speculative"]["final_k"] <= 8' | grep -qx True ||
      fail "usage.speculative.final_k missing with --draft-k-adaptive: $(cat "$WORK/out")"
  else
    json '"final_k" not in d["usage"]["speculative"]' | grep -qx True || fail "final_k without --draft-k-adaptive"
  fi
  # logprobs 0 and 2 decode speculatively (verify steps report the sampled token's
  # logprob and its top alternatives); echo + logprobs 2 (prompt logprobs) decodes
  # plainly: the same tokens, logprobs and alternatives.
  P='"model":"'$NAME'","prompt":"Lily and Tom went to the park","max_tokens":24,"temperature":0'
  for v in 0 2 echo; do
    case $v in echo) body="{$P,\"logprobs\":2,\"echo\":true}";; *) body="{$P,\"logprobs\":$v}";; esac
    [ "$(post /v1/completions "$body")" = 200 ] || fail "logprobs $v: $(cat "$WORK/out")"
    cp "$WORK/out" "$WORK/lp$v"
  done
  python3 - "$WORK/lp0" "$WORK/lp2" "$WORK/lpecho" <<'PY' || fail "speculative logprobs differ from plain decoding's"
import json, sys
a, t, b = (json.load(open(f)) for f in sys.argv[1:4])
for d in (a, t):
    assert d["usage"].get("speculative", {}).get("verify_passes", 0) > 0, d["usage"]
assert "speculative" not in b["usage"], b["usage"]
cb = b["choices"][0]
n = 24
lb, tb = cb["logprobs"]["token_logprobs"][-n:], cb["logprobs"]["top_logprobs"][-n:]
assert cb["text"].endswith(a["choices"][0]["text"]), (cb["text"], a["choices"][0]["text"])
def close(x, y):
    return abs(x - y) <= 1e-4 * max(1.0, abs(y))
for d in (a, t):
    c = d["choices"][0]
    assert c["text"] == a["choices"][0]["text"], (c["text"], a["choices"][0]["text"])
    la = c["logprobs"]["token_logprobs"]
    assert len(la) == len(lb) == n, (len(la), len(lb))
    assert all(close(x, y) for x, y in zip(la, lb)), (la, lb)
ta = t["choices"][0]["logprobs"]["top_logprobs"]
assert len(ta) == n, len(ta)
for x, y in zip(ta, tb):
    assert len(x) == len(y) == 2, (x, y)
    assert list(x) == list(y), (x, y)  # same alternatives, most likely first
    assert all(close(x[k], y[k]) for k in y), (x, y)
PY
  echo "speculative decoding (${EXTRA[*]}): usage and metrics report it"
fi

# ---- concurrent requests each equal their solo result ----
cpids=()
for r in 1 2 3; do
  for i in "${!PROMPTS[@]}"; do
    body=$(python3 -c 'import json,sys; print(json.dumps({"model":sys.argv[1],"prompt":sys.argv[2],"max_tokens":int(sys.argv[3]),"temperature":0,"stream":sys.argv[4]=="1"}))' "$NAME" "${PROMPTS[$i]}" "${MAXTOK[$i]}" $((r % 2)))
    curl -sN -H 'Content-Type: application/json' --data-binary "$body" "$URL/v1/completions" >"$WORK/conc$r.$i" &
    cpids+=($!)
  done
done
for p in "${cpids[@]}"; do wait "$p"; done
for r in 1 2 3; do
  for i in "${!PROMPTS[@]}"; do
    python3 - "$WORK/conc$r.$i" "$WORK/expect$i" <<'PY' || fail "concurrent request $r.$i"
import json, sys
raw = open(sys.argv[1], encoding="utf-8").read()
if raw.startswith("data: "):
    text = "".join(c["text"] for l in raw.split("\n\n") if l.startswith("data: {") for c in json.loads(l[6:])["choices"])
else:
    text = json.loads(raw)["choices"][0]["text"]
expect = open(sys.argv[2], encoding="utf-8").read()
assert text == expect, (text, expect)
PY
  done
done
echo "12 concurrent requests equal their solo results"

# ---- chat, n, logprobs, echo, stop ----
[ "$(post /v1/chat/completions "{\"model\":\"$NAME\",\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}],\"max_tokens\":8,\"temperature\":0}")" = 200 ] || fail "chat: $(cat "$WORK/out")"
json 'd["choices"][0]["message"]["role"]=="assistant" or sys.exit(1)' >/dev/null
[ "$(post /v1/completions "{\"model\":\"$NAME\",\"prompt\":\"Once upon a time\",\"max_tokens\":6,\"temperature\":0.9,\"seed\":3,\"n\":3,\"logprobs\":2}")" = 200 ] || fail "n/logprobs: $(cat "$WORK/out")"
json 'len(d["choices"])==3 and all(len(c["logprobs"]["top_logprobs"][0])==2 for c in d["choices"]) or sys.exit(1)' >/dev/null || fail "n=3 logprobs=2: $(cat "$WORK/out")"
[ "$(post /v1/completions "{\"model\":\"$NAME\",\"prompt\":\"Once upon a time\",\"max_tokens\":0,\"echo\":true,\"logprobs\":1}")" = 200 ] || fail "echo: $(cat "$WORK/out")"
json 'd["choices"][0]["text"]=="Once upon a time" and d["choices"][0]["logprobs"]["token_logprobs"][0] is None and all(x<0 for x in d["choices"][0]["logprobs"]["token_logprobs"][1:]) or sys.exit(1)' >/dev/null || fail "echo logprobs: $(cat "$WORK/out")"
first_word=$(python3 -c 'import sys; t=open(sys.argv[1]).read(); print(t.split()[1])' "$WORK/expect0")
[ "$(post /v1/completions "{\"model\":\"$NAME\",\"prompt\":\"Once upon a time\",\"max_tokens\":40,\"temperature\":0,\"stop\":[\"$first_word\"]}")" = 200 ] || fail "stop"
json 'd["choices"][0]["finish_reason"]=="stop" and "'"$first_word"'" not in d["choices"][0]["text"] or sys.exit(1)' >/dev/null || fail "stop sequence: $(cat "$WORK/out")"
[ "$(curl -s -o "$WORK/out" -w '%{http_code}' "$URL/v1/models")" = 200 ] || fail "models"
json 'd["data"][0]["id"]=="'"$NAME"'" or sys.exit(1)' >/dev/null || fail "models: $(cat "$WORK/out")"
echo "chat, n, logprobs, echo, stop, models ok"

# ---- bad input: 4xx in OpenAI's error format naming the field ----
LONG=$(python3 -c 'print("Once upon a time " * 1500)')
python3 -c 'import sys; sys.stdout.buffer.write(b"{\"model\":\"'"$NAME"'\",\"prompt\":\"\xff\xfe\"}")' >"$WORK/badutf8"
python3 -c 'print("{\"model\":\"'"$NAME"'\",\"prompt\":\"" + "a" * 2100000 + "\"}")' >"$WORK/big"
while IFS='|' read -r path body status param; do
  [ -z "$path" ] && continue
  case "$body" in
    @*) code=$(curl -s -o "$WORK/out" -w '%{http_code}' -H 'Content-Type: application/json' --data-binary "@$WORK/${body#@}" "$URL$path") ;;
    *) code=$(post "$path" "$body") ;;
  esac
  [ "$code" = "$status" ] || fail "bad input ${body:0:120}: status $code, expected $status: $(head -c 300 "$WORK/out")"
  python3 - "$WORK/out" "$param" <<'PY' || fail "bad input ${body:0:120}: error body $(head -c 300 "$WORK/out")"
import json, sys
e = json.load(open(sys.argv[1]))["error"]
assert set(e) == {"message", "type", "param", "code"}, e
assert e["param"] == sys.argv[2], (e["param"], sys.argv[2])
assert isinstance(e["message"], str) and e["message"]
PY
done <<EOF2
/v1/completions|{"model":"$NAME","prompt":|400|body
/v1/completions|[1,2]|400|body
/v1/completions|{"model":"$NAME","prompt":"x","max_tokens":"ten"}|400|max_tokens
/v1/completions|{"model":"$NAME","prompt":"x","max_tokens":-1}|400|max_tokens
/v1/completions|{"model":"$NAME","prompt":"x","max_tokens":1000000000}|400|max_tokens
/v1/completions|{"model":"$NAME","prompt":"x","bogus":1}|400|bogus
/v1/completions|{"model":"nope","prompt":"x"}|404|model
/v1/completions|{"prompt":"x"}|400|model
/v1/completions|{"model":"$NAME"}|400|prompt
/v1/completions|{"model":"$NAME","prompt":7}|400|prompt
/v1/completions|{"model":"$NAME","prompt":"$LONG"}|400|prompt
/v1/completions|{"model":"$NAME","prompt":"x","temperature":"hot"}|400|temperature
/v1/completions|{"model":"$NAME","prompt":"x","temperature":-1}|400|temperature
/v1/completions|{"model":"$NAME","prompt":"x","top_p":0}|400|top_p
/v1/completions|{"model":"$NAME","prompt":"x","n":0}|400|n
/v1/completions|{"model":"$NAME","prompt":"x","logprobs":99}|400|logprobs
/v1/completions|{"model":"$NAME","prompt":"x","stop":5}|400|stop
/v1/completions|{"model":"$NAME","prompt":"x","stream":"yes"}|400|stream
/v1/completions|{"model":"$NAME","prompt":[99999]}|400|prompt
/v1/completions|@badutf8|400|body
/v1/completions|@big|413|body
/v1/chat/completions|{"model":"$NAME","messages":"hi"}|400|messages
/v1/chat/completions|{"model":"$NAME","messages":[{"role":"robot","content":"x"}]}|400|messages[0].role
/v1/chat/completions|{"model":"$NAME","messages":[{"role":"user","content":"x"}],"top_logprobs":2}|400|top_logprobs
/v1/nothing|{}|404|url
EOF2
[ "$(curl -s -o /dev/null -w '%{http_code}' "$URL/health")" = 200 ] || fail "health after bad input"
[ "$(post /v1/completions "{\"model\":\"$NAME\",\"prompt\":\"Once upon a time\",\"max_tokens\":40,\"temperature\":0}")" = 200 ] || fail "serving after bad input"
json 'd["choices"][0]["text"]' | python3 -c 'import sys; sys.stdout.write(sys.stdin.read()[:-1])' | cmp -s - "$WORK/expect0" || fail "result after bad input"
echo "bad-input table: every case a 4xx naming its field; still serving"

# ---- a client that disconnects mid-stream is cancelled; the server goes on ----
curl -sN -m 0.3 -H 'Content-Type: application/json' --data-binary "{\"model\":\"$NAME\",\"prompt\":\"Once\",\"max_tokens\":400,\"stream\":true}" "$URL/v1/completions" >/dev/null 2>&1 || true
[ "$(curl -s -o /dev/null -w '%{http_code}' "$URL/health")" = 200 ] || fail "health after disconnect"

# ---- load ----
N=300 C=16
python3 "$LOAD" --port "$PORT" --model "$NAME" --requests $N --concurrency $C || fail "load"

# ---- /metrics parses ----
curl -sf "$URL/metrics" >"$WORK/metrics" || fail "metrics"
python3 - "$WORK/metrics" <<'PY' || fail "metrics do not parse"
import re, sys
names = set()
for line in open(sys.argv[1]):
    line = line.rstrip("\n")
    if not line or line.startswith("#"):
        continue
    m = re.fullmatch(r'([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[a-zA-Z_]+="[^"]*"(,[a-zA-Z_]+="[^"]*")*\})? (-?[0-9.e+-]+|NaN|\+Inf)', line)
    assert m, line
    names.add(m.group(1))
for n in ["tessera_queue_depth", "tessera_sequences", "tessera_kv_blocks", "tessera_prompt_tokens_total",
          "tessera_generated_tokens_total", "tessera_time_to_first_token_seconds_bucket",
          "tessera_inter_token_latency_seconds_count", "tessera_errors_total", "tessera_step_seconds_total"]:
    assert n in names, n
PY
grep -q 'tessera_errors_total{kind="invalid_request"} [1-9]' "$WORK/metrics" || fail "errors not counted"
# Every rank's step time (4 ranks under mpiexec), each with some compute recorded.
RANKS=$([ "$MODE" = mpi ] && echo 4 || echo 1)
[ "$(grep -cE '^tessera_rank_step_seconds_total\{rank="[0-9]+",part="compute"\} [0-9.e+-]*[1-9]' "$WORK/metrics")" = "$RANKS" ] ||
  fail "per-rank step times: want $RANKS ranks with compute time"
echo "metrics parse"

# ---- overload: a small queue answers 429 with Retry-After (single process only) ----
if [ "$MODE" = single ]; then
  kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true
  start_server "$WORK/server2.log" --max-queue 2 --max-running 2
  python3 "$LOAD" --port "$PORT" --model "$NAME" --requests 64 --concurrency 32 --max-tokens 64 --expect-429 || fail "overload"
  code=$(curl -s -D "$WORK/headers" -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/health")
  [ "$code" = 200 ] || fail "health after overload"
fi
echo "PASS ($MODE) in $(( $(date +%s) - t0 )) s"
