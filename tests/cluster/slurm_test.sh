#!/usr/bin/env bash
# A one-node SLURM (munged, slurmctld, slurmd started here, stopped on exit) runs
# launch/batch.sbatch:
#   1. srun --mpi=pmix, TP=2: runs to completion, every prompt answered once, the text of
#      prompt 1 = the single-process batch job's;
#   2. mpirun inside the allocation (LAUNCHER=mpirun): the same;
#   3. a rank SIGKILLed midway: the job requeues itself, resumes, and finishes with every
#      prompt answered exactly once;
# then launch/serve.sbatch: comes up, answers a completion, a rank SIGKILLed with a request
# in flight (503, non-zero exit, self-requeue, serves again), scancel (4, serve_case).
#   slurm_test.sh TESSERA MODEL
set -uo pipefail
T=$1 MODEL=$2
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
. "$HERE/lib.sh"
need_root
need_tools slurmctld slurmd munged sbatch scontrol srun mpirun python3
export SLURM_DIR=/tmp/tsl$$ SLURM_PORT_BASE=$((17000 + ($$ % 400) * 2))
export SLURM_CONF=$SLURM_DIR/etc/slurm.conf GLOG_minloglevel=1
TMP=$(mktemp -d /tmp/tessera-slurm-test.XXXXXX)
trap '"$ROOT/scripts/slurm-local.sh" stop >/dev/null 2>&1; [ $FAILS -eq 0 ] && rm -rf "$TMP" "$SLURM_DIR" || echo "kept $TMP $SLURM_DIR/log"' EXIT
"$ROOT/scripts/slurm-local.sh" start >/dev/null || { echo "FAIL slurm-local start"; exit 1; }
cd "$TMP"
for i in $(seq 1 120); do echo "{\"id\":\"p$i\",\"prompt\":\"Once upon a time there was a little $i\"}"; done >prompts120.jsonl
head -n 16 prompts120.jsonl >prompts16.jsonl
"$T" generate --model "$MODEL" --prompts prompts16.jsonl --output ref.jsonl --max-tokens 32 --threads 1 2>/dev/null ||
  { echo "FAIL single-process batch job"; exit 1; }

submit() {  # submit PROMPTS OUTPUT [VAR=VALUE,...]: prints the job id
  sbatch --parsable --ntasks=2 --export="ALL,TESSERA=$T,MODEL=$MODEL,PROMPTS=$TMP/$1,OUTPUT=$TMP/$2,TP=2,PP=1,MAX_TOKENS=32,BATCH_SIZE=4${3:+,$3}" \
    "$ROOT/launch/batch.sbatch"
}
state() { scontrol show job "$1" 2>/dev/null | grep -oP 'JobState=\K\S+'; }
final() { [[ $(state "$1") =~ ^(COMPLETED|FAILED|CANCELLED|TIMEOUT|NODE_FAIL|OUT_OF_MEMORY)$ ]]; }
# every id of the prompts file exactly once in the output
exactly_once() {
  python3 - "$1" "$2" <<'PY'
import json, sys, collections
want = [json.loads(l)["id"] for l in open(sys.argv[1]) if l.strip()]
got = collections.Counter(json.loads(l)["id"] for l in open(sys.argv[2]) if l.strip())
missing = [i for i in want if got[i] == 0]
dup = [i for i, n in got.items() if n > 1]
extra = [i for i in got if i not in set(want)]
if missing or dup or extra:
    print(f"missing {missing[:5]} ({len(missing)}), duplicated {dup[:5]} ({len(dup)}), unknown {extra[:5]}")
    sys.exit(1)
PY
}

# SLURM holds a requeued job ~2 min (Reason=BeginTime). release_held JID starts it early,
# but only 2 s into the hold: slurmd revokes the old run's credential when it ends it, with
# a one-second resolution, and a run started within that second is refused ("Job credential
# revoked": the job ends FAILED instead of running again).
HELD_SINCE=""
release_held() {
  if scontrol show job "$1" 2>/dev/null | grep -q 'Reason=BeginTime'; then
    [ -n "$HELD_SINCE" ] || HELD_SINCE=$(now_ms)
    if (($(now_ms) - HELD_SINCE >= 2000)); then scontrol update JobId="$1" StartTime=now; HELD_SINCE=""; fi
  fi
  return 0
}

complete_case() {  # name, extra exports
  local name=$1 out=out-$RANDOM.jsonl t0 jid; t0=$(now_ms)
  jid=$(submit prompts16.jsonl "$out" "$2") || { bad "$name: sbatch failed"; return; }
  wait_for 120 final "$jid"
  local st; st=$(state "$jid") dt=$(($(now_ms) - t0))
  if [ "$st" != COMPLETED ]; then bad "$name: job $jid $st after $dt ms"; tail -n 15 "tessera-batch-$jid.out"; return; fi
  if ! msg=$(exactly_once prompts16.jsonl "$out"); then bad "$name: $msg"; return; fi
  if [ "$(head -n1 "$out" | python3 -c 'import json,sys; print(json.load(sys.stdin)["text"])')" != \
       "$(grep '"p1"' ref.jsonl | python3 -c 'import json,sys; print(json.load(sys.stdin)["text"])')" ]; then
    bad "$name: text of p1 differs from the single-process run"; return
  fi
  grep -q "tessera: job of 2 ranks on 1 host: tp 2, pp 1" "tessera-batch-$jid.out" || { bad "$name: no start-up layout"; return; }
  ok "$name: job $jid COMPLETED in $dt ms, 16/16 prompts answered once, text = single-process run"
}
complete_case "sbatch, srun --mpi=pmix" ""
complete_case "sbatch, mpirun inside the allocation" "LAUNCHER=mpirun"

# 3. kill a rank midway: the job requeues itself and resumes
t0=$(now_ms)
jid=$(submit prompts120.jsonl requeue.jsonl "MAX_RESTARTS=2")
if ! wait_for 120 test -s requeue.jsonl; then bad "requeue: no result within 120 s"; tail "tessera-batch-$jid.out"
else
  before=$(wc -l <requeue.jsonl)
  victim=""
  for p in $(pgrep -x tessera); do
    env_of=$(tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null)
    grep -qx "SLURM_JOB_ID=$jid" <<<"$env_of" && grep -qx "SLURM_PROCID=1" <<<"$env_of" && { victim=$p; break; }
  done
  if [ -z "$victim" ]; then bad "requeue: rank 1 of job $jid not found (finished already?)"
  else
    kill -9 "$victim"
    # the job requeues itself; release it from SLURM's hold every time it is requeued
    release_or_final() { release_held "$jid"; final "$jid"; }
    wait_for 180 release_or_final
    st=$(state "$jid"); dt=$(($(now_ms) - t0))
    if [ "$st" != COMPLETED ]; then bad "requeue: job $jid $st after $dt ms"; tail -n 20 "tessera-batch-$jid.out"
    elif ! msg=$(exactly_once prompts120.jsonl requeue.jsonl); then bad "requeue: $msg"
    elif ! grep -q "restart 1" "tessera-batch-$jid.out" || ! grep -qE "[1-9][0-9]* already in" "tessera-batch-$jid.out"; then
      bad "requeue: the job did not resume from its results"; grep -E "^tessera-batch|^batch: [0-9]+ prompts" "tessera-batch-$jid.out"
    else
      ok "requeue: rank 1 SIGKILLed after $before results; job $jid requeued itself, resumed ($(grep -oE '[0-9]+ already in' "tessera-batch-$jid.out" | tail -1)), COMPLETED in $dt ms; 120/120 prompts answered exactly once"
    fi
  fi
fi
# 4. the serving job: comes up and answers a completion; a rank SIGKILLed with a request
#    in flight: the request gets HTTP 503 naming the lost rank, tessera exits non-zero, the
#    job requeues itself, and after the restart it serves the same completion again;
#    scancel then stops it cleanly.
serve_log() { cat "tessera-serve-$1.out" 2>/dev/null; }
complete() {  # complete PORT: the text of a greedy completion ("" on failure)
  local body; body=$(curl -sf --max-time 30 "http://127.0.0.1:$1/v1/completions" -H 'Content-Type: application/json' \
    -d '{"model":"stories260K","prompt":"Once upon a time","max_tokens":32,"temperature":0}')
  python3 -c 'import json,sys; print(json.loads(sys.argv[1])["choices"][0]["text"])' "$body" 2>/dev/null
}
serve_case() {
  local port=$((18000 + ($$ % 2000))) t0 jid; t0=$(now_ms)
  jid=$(sbatch --parsable --ntasks=2 --export="ALL,TESSERA=$T,MODEL=$MODEL,TP=2,PP=1,PORT=$port,MAX_RESTARTS=1" \
    "$ROOT/launch/serve.sbatch") || { bad "serve: sbatch failed"; return; }
  if ! wait_for 90 curl -sf "http://127.0.0.1:$port/health" -o /dev/null; then
    bad "serve: job $jid not answering /health on port $port within 90 s ($(state "$jid"))"; serve_log "$jid" | tail -n 15
    scancel "$jid"; return
  fi
  local up=$(($(now_ms) - t0))
  local want; want=$("$T" generate --model "$MODEL" --prompt "Once upon a time" --max-tokens 32 --threads 1 --no-echo 2>/dev/null)
  local text; text=$(complete "$port")
  if [ -z "$text" ] || [ "$text" != "$want" ]; then
    bad "serve: completion '$text' differs from generate's '$want'"; scancel "$jid"; return
  fi
  ok "serve: job $jid answered /health after $up ms, a completion = the generate text"

  # The fault. SIGSTOP first pins the request in flight (its step waits for rank 1), then
  # SIGKILL: rank 0 sees the connection drop in the middle of the step.
  local victim p
  for p in $(pgrep -x tessera); do
    env_of=$(tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null)
    grep -qx "SLURM_JOB_ID=$jid" <<<"$env_of" && grep -qx "SLURM_PROCID=1" <<<"$env_of" && { victim=$p; break; }
  done
  [ -n "$victim" ] || { bad "serve fault: rank 1 of job $jid not found"; scancel "$jid"; return; }
  kill -STOP "$victim"
  curl -s --max-time 30 -o inflight.json -w '%{http_code}' "http://127.0.0.1:$port/v1/completions" \
    -H 'Content-Type: application/json' -d '{"model":"stories260K","prompt":"Once upon a time","max_tokens":64}' \
    >inflight.code 2>/dev/null &
  local cpid=$!
  sleep 1
  local tk; tk=$(now_ms)
  kill -9 "$victim"
  wait "$cpid"
  local crc=$? code; code=$(cat inflight.code) dt=$(($(now_ms) - tk))
  if [ "$code" != 503 ] || ! grep -q "rank 1" inflight.json; then
    bad "serve fault: in-flight request got HTTP $code (curl exit $crc) after $dt ms: $(head -c 300 inflight.json)"
    serve_log "$jid" | grep -v "^I" | tail -n 10; scancel "$jid"; return
  fi
  ok "serve fault: rank 1 SIGKILLed, the in-flight request got HTTP 503 after $dt ms: $(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["error"]["message"])' inflight.json 2>/dev/null | head -c 160)"

  # The job exits non-zero and requeues itself; release it from SLURM's hold, then wait
  # for the restarted server.
  local tq; tq=$(now_ms)
  release_or_up() {
    release_held "$jid"
    curl -sf "http://127.0.0.1:$port/health" -o /dev/null && serve_log "$jid" | grep -q "(restart 1)"
  }
  if ! wait_for 90 release_or_up; then
    bad "serve requeue: job $jid not serving again within 90 s ($(state "$jid"))"; serve_log "$jid" | grep -v "^I" | tail -n 15
    scancel "$jid"; return
  fi
  local exited; exited=$(serve_log "$jid" | grep -oP 'tessera exited \K[0-9]+' | head -1)
  text=$(complete "$port")
  local back=$(($(now_ms) - tq))
  if [ -z "$exited" ] || [ "$exited" = 0 ]; then bad "serve requeue: no non-zero exit in the job log"
  elif [ "$text" != "$want" ]; then bad "serve requeue: completion after the restart '$text' differs from '$want'"
  else ok "serve requeue: tessera exited $exited, job $jid requeued itself and serves again $back ms after the fault (restart 1), completion = the generate text"
  fi

  scancel "$jid"
  wait_for 60 final "$jid"
  local st; st=$(state "$jid")
  sleep 0.5
  local left=0
  for p in $(pgrep -x tessera); do
    tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qx "SLURM_JOB_ID=$jid" && left=$((left + 1))
  done
  if [ "$st" != CANCELLED ] || ((left > 0)); then bad "serve: after scancel: $st, $left ranks left"
  else ok "serve: scancel -> $st, no rank left, $(($(now_ms) - t0)) ms in all"
  fi
}
if command -v curl >/dev/null; then serve_case; else echo "skip serve: curl not found"; fi
[ $FAILS -eq 0 ] && echo "slurm_test: all passed" || echo "slurm_test: $FAILS failed"
exit $((FAILS > 0))
