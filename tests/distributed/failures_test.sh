#!/usr/bin/env bash
# Splits a model cannot take, and wrong world sizes, fail fast with a message saying
# why; a rank killed mid-generation makes the job exit non-zero within a bounded time,
# with the lost rank named.
#   failures_test.sh TESSERA MODEL
set -uo pipefail
T=$1 MODEL=$2
TMP=$(mktemp -d)
trap 'pkill -CONT -f "$TMP/" 2>/dev/null; pkill -9 -f "$TMP/" 2>/dev/null; rm -rf "$TMP"' EXIT
MPI=(mpiexec --oversubscribe --allow-run-as-root)
fail=0
expect_fail() {  # name, expected stderr substring, max seconds, command...
  local name=$1 want=$2 limit=$3; shift 3
  local t0=$(date +%s)
  timeout $((limit + 30)) "$@" >"$TMP/out" 2>"$TMP/err"
  local rc=$? dt=$(( $(date +%s) - t0 ))
  if [ $rc -ne 0 ] && [ $rc -ne 124 ] && [ $dt -le $limit ] && grep -qF -- "$want" "$TMP/err"; then
    echo "ok   $name (exit $rc after ${dt}s)"
  else
    echo "FAIL $name (exit $rc after ${dt}s, wanted '$want' within ${limit}s):"; grep -v "^I" "$TMP/err" | tail -8
    fail=1
  fi
}

expect_fail "tp that does not divide the heads" "query heads do not split evenly over tp = 3" 30 \
  "${MPI[@]}" -n 3 "$T" generate --model "$MODEL" --prompt hi --tp 3 --threads 1
expect_fail "pp larger than the layers" "layers cannot fill pp = 6" 30 \
  "${MPI[@]}" -n 6 "$T" generate --model "$MODEL" --prompt hi --pp 6 --threads 1
expect_fail "world size that does not match tp x pp" "needs 4 ranks" 30 \
  "${MPI[@]}" -n 3 "$T" generate --model "$MODEL" --prompt hi --tp 2 --pp 2 --threads 1
expect_fail "missing model on the workers" "no-such-model.gguf" 30 \
  "${MPI[@]}" -n 2 "$T" generate --model "$TMP/no-such-model.gguf" --prompt hi --tp 2 --threads 1

expect_fail "ranks launched with different flags (plan fingerprint)" "plan fingerprint" 30 \
  "${MPI[@]}" -n 1 "$T" generate --model "$MODEL" --prompt hi --tp 2 --threads 1 : \
  -n 1 "$T" generate --model "$MODEL" --prompt hi --tp 2 --threads 1 --kv-block-size 32

# Kill rank 1 with SIGKILL while the job is busy (a long benchmark), then time the exit.
# The model is copied to a path unique to this test so pgrep finds only these ranks.
cp "$MODEL" "$TMP/kill-test-model.gguf"
"${MPI[@]}" -n 2 "$T" bench --model "$TMP/kill-test-model.gguf" --tp 2 --threads 1 --prompt-tokens 64 \
  --gen-tokens 64 --repeat 100000 --no-limits >"$TMP/kill.out" 2>"$TMP/kill.err" &
job=$!
victim=""
for _ in $(seq 1 100); do
  # The rank processes are the children of mpiexec running tessera; the second one is rank 1.
  victim=$(pgrep -f "tessera bench --model $TMP/kill-test-model" | grep -v "^$job\$" | sort -n | sed -n 2p)
  [ -n "$victim" ] && grep -q "" /proc/$victim/cmdline 2>/dev/null && break
  sleep 0.1
done
sleep 1
t0=$(date +%s)
kill -9 "$victim" 2>/dev/null
for _ in $(seq 1 600); do kill -0 $job 2>/dev/null || break; sleep 0.1; done
kill -9 $job 2>/dev/null  # still running after 60 s: a hang (reported below)
wait $job
rc=$?
dt=$(( $(date +%s) - t0 ))
if [ $rc -ne 0 ] && [ $dt -le 30 ] && grep -qiE "rank 1|process rank 1" "$TMP/kill.err"; then
  echo "ok   SIGKILL of rank 1: job exited $rc after ${dt}s naming rank 1"
else
  echo "FAIL SIGKILL of rank 1: exit $rc after ${dt}s"; grep -v "^I" "$TMP/kill.err" | tail -8; fail=1
fi
# A rank that stops answering while serving: the open request gets HTTP 503 naming the
# failure within the step timeout, and the job exits non-zero (so SLURM can requeue).
cp "$MODEL" "$TMP/serve-stop-model.gguf"
PORT=$((20000 + RANDOM % 20000))
"${MPI[@]}" -n 2 "$T" serve --model "$TMP/serve-stop-model.gguf" --tp 2 --threads 1 --http 127.0.0.1:$PORT \
  --step-timeout 5 >"$TMP/serve.out" 2>"$TMP/serve.err" &
job=$!
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PORT/health" >/dev/null 2>&1 && break; sleep 0.1; done
victim=$(pgrep -f "tessera serve --model $TMP/serve-stop-model" | grep -v "^$job\$" | sort -n | tail -1)
kill -STOP "$victim"
t0=$(date +%s)
code=$(curl -s -o "$TMP/resp.json" -w "%{http_code}" --max-time 30 "http://127.0.0.1:$PORT/v1/completions" \
  -H 'Content-Type: application/json' -d '{"model":"serve-stop-model","prompt":"Once upon a time","max_tokens":300}')
dt=$(( $(date +%s) - t0 ))
# Rank 0 aborts the job right after answering; on one host Open MPI reaps a stopped
# rank only once it runs again (observed with Open MPI 4.1), so let it run, then bound
# the exit. Across hosts (tests/cluster) the stopped rank is killed where it is.
kill -CONT "$victim" 2>/dev/null
for _ in $(seq 1 300); do kill -0 $job 2>/dev/null || break; sleep 0.1; done
kill -0 $job 2>/dev/null && { kill -9 $job; echo "FAIL serve with a stopped rank: the job did not exit"; fail=1; }
wait $job
rc=$?
if [ "$code" = 503 ] && [ $dt -le 15 ] && grep -q "did not answer" "$TMP/resp.json" && [ $rc -ne 0 ]; then
  echo "ok   serve with a stopped rank: HTTP 503 after ${dt}s, job exit $rc"
else
  echo "FAIL serve with a stopped rank: HTTP $code after ${dt}s, job exit $rc"; cat "$TMP/resp.json"
  grep -v "^I" "$TMP/serve.err" | tail -5; fail=1
fi
exit $fail
