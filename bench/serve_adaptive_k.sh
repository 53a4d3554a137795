#!/usr/bin/env bash
# Speculative decoding in `tessera serve` under concurrent load: fixed K, adaptive K
# (--draft-k-adaptive) and the batch cap (--draft-max-batch-tokens), per draft kind.
# C greedy requests (different prompts, MAX_TOKENS each) are sent at once; per
# configuration it prints the server's decode CPU seconds (user + sys of the server
# process while the load runs: robust to the shared machine's load, wall time is not),
# wall seconds, steps, tokens computed in steps, verify passes, drafted / accepted draft
# tokens, mean K, and a checksum of the texts (greedy: equal for every configuration).
#
#   bench/serve_adaptive_k.sh build/tessera MODEL "ngram int8" [extra serve flags]
#   C=8 MAX_TOKENS=48 CAP=16 bench/serve_adaptive_k.sh ...
set -euo pipefail
T=$1 M=$2 DRAFTS=$3
shift 3
C=${C:-8} MAX_TOKENS=${MAX_TOKENS:-48} CAP=${CAP:-16} K=${K:-4}
WORK=$(mktemp -d)
trap 'kill $SP 2>/dev/null || true; rm -rf "$WORK"' EXIT
SP=
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
cpu_of() { awk '{print ($14 + $15) / '"$(getconf CLK_TCK)"'}' "/proc/$1/stat"; }

run() {  # run LABEL serve-flags...
  local label=$1; shift
  local port; port=$(free_port)
  "$T" serve --model "$M" --threads 1 --http 127.0.0.1:$port --model-name m "$@" >"$WORK/log" 2>&1 &
  SP=$!
  for _ in $(seq 1 600); do curl -sf "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break; sleep 0.1; done
  local c0; c0=$(cpu_of $SP)
  local wall
  wall=$(python3 - "$port" "$C" "$MAX_TOKENS" "$WORK/texts" <<'PY'
import http.client, json, sys, threading, time
port, c, max_tokens, out = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
prompts = ["The capital of France is", "def fibonacci(n):\n    if n < 2:\n        return n\n    return",
           "List the days of the week: Monday, Tuesday,", "Once upon a time, in a small village by the sea,",
           "1, 2, 3, 4, 5, 6, 7, 8,", "The recipe for pancakes: flour, eggs, milk.", "Q: What is 2 + 2?\nA:",
           "import numpy as np\nimport"]
texts = [None] * c
def one(i):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    body = {"model": "m", "prompt": prompts[i % len(prompts)], "max_tokens": max_tokens, "temperature": 0}
    conn.request("POST", "/v1/completions", json.dumps(body), {"Content-Type": "application/json"})
    texts[i] = json.loads(conn.getresponse().read())["choices"][0]["text"]
t0 = time.perf_counter()
th = [threading.Thread(target=one, args=(i,)) for i in range(c)]
for t in th: t.start()
for t in th: t.join()
open(out, "w").write(json.dumps(texts))
print("%.2f" % (time.perf_counter() - t0), end="")
PY
)
  local c1; c1=$(cpu_of $SP)
  curl -sf "http://127.0.0.1:$port/metrics" >"$WORK/metrics"
  kill $SP; wait $SP 2>/dev/null || true
  m() { awk -v k="$1" '$1 == k {print $2}' "$WORK/metrics"; }
  printf '%-28s cpu %6.2f s  wall %6.2f s  steps %5s  step tokens %6s  verify %5s  drafted %5s  accepted %5s  mean K %4s  texts %s\n' \
    "$label" "$(awk "BEGIN{print $c1 - $c0}")" "$wall" "$(m tessera_steps_total)" "$(m tessera_step_tokens_total)" \
    "$(m tessera_speculative_verify_passes_total)" "$(m 'tessera_speculative_tokens_total{kind="drafted"}')" \
    "$(m 'tessera_speculative_tokens_total{kind="accepted"}')" \
    "$(awk '$1=="tessera_speculative_k_sum"{s=$2} $1=="tessera_speculative_k_count"{n=$2} END{printf "%.2f", n ? s/n : 0}' "$WORK/metrics")" \
    "$(md5sum <"$WORK/texts" | cut -c1-8)"
}

run "plain" "$@"
for d in $DRAFTS; do
  run "$d K=$K" --draft "$d" --draft-k "$K" "$@"
  run "$d adaptive from $K" --draft "$d" --draft-k "$K" --draft-k-adaptive "$@"
  run "$d K=$K cap $CAP" --draft "$d" --draft-k "$K" --draft-max-batch-tokens "$CAP" "$@"
  run "$d adaptive cap $CAP" --draft "$d" --draft-k "$K" --draft-k-adaptive --draft-max-batch-tokens "$CAP" "$@"
done
