#!/usr/bin/env bash
# mpirun across 3 "hosts" (network namespaces with their own hostnames and addresses):
# TP=2 x PP=3, two ranks per host, over TCP and over UCX, gives the single-rank text; the
# start-up layout names every rank's host; the control-plane endpoints are the hosts'
# addresses (198.18.x.1[0-2]), not loopback.
#   netns_test.sh TESSERA MODEL
set -uo pipefail
T=$1 MODEL=$2
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
. "$HERE/lib.sh"
need_root
need_netns
export NETNS_PREFIX=tsn$$ NETNS_HOSTS=3 NETNS_SUBNET=198.18.$((($$ % 200) + 20)) NETNS_STATE=/tmp/tessera-netns-tsn$$
export GLOG_minloglevel=1 OMPI_MCA_btl_vader_single_copy_mechanism=none
NH="$ROOT/scripts/netns-hosts.sh"
TMP=$(mktemp -d)
trap '"$NH" down >/dev/null 2>&1; rm -rf "$TMP"' EXIT
"$NH" up || { echo "FAIL netns-hosts up"; exit 1; }

GEN=(generate --model "$MODEL" --prompt "Once upon a time" --max-tokens 48 --threads 1 --no-echo)
"$T" "${GEN[@]}" >"$TMP/ref.txt" 2>"$TMP/ref.err" || { echo "FAIL single-rank run"; cat "$TMP/ref.err"; exit 1; }

run_case() {  # name, extra mpirun flags...
  local name=$1; shift
  local t0; t0=$(now_ms)
  timeout 90 "$NH" mpirun -np 6 "$@" "$T" "${GEN[@]}" --tp 2 --pp 3 --timings >"$TMP/out.txt" 2>"$TMP/out.err"
  local rc=$? dt=$(($(now_ms) - t0))
  if [ $rc -ne 0 ]; then bad "$name: exit $rc after ${dt} ms"; grep -v "^I" "$TMP/out.err" | tail -8; return; fi
  if cmp -s "$TMP/out.txt" "$TMP/ref.txt"; then ok "$name: 6 ranks on 3 hosts, text identical to the single-rank run (${dt} ms)"
  else bad "$name: text differs"; diff "$TMP/ref.txt" "$TMP/out.txt" | head -5; fi
  # start-up layout: one line per rank with its host and coordinates
  local want
  for want in "job of 6 ranks on 3 hosts: tp 2, pp 3" "rank 0 on h0: pp 0 tp 0" "rank 1 on h0: pp 0 tp 1" \
              "rank 3 on h1: pp 1 tp 1" "rank 5 on h2: pp 2 tp 1"; do
    grep -qF "tessera: $want" "$TMP/out.err" || { bad "$name: layout line '$want' missing"; grep "^tessera:" "$TMP/out.err"; }
  done
  # the control plane reached the other hosts by their addresses (workers report their host)
  grep -qE "^rank 4 on h2: pp 2 tp 0" "$TMP/out.err" || { bad "$name: no loaded-layout line for rank 4 on h2"; }
  if [ -n "${WANT_PML:-}" ]; then  # every rank chose the PML asked for (pml_base_verbose)
    local n; n=$(grep -c "select: component $WANT_PML selected" "$TMP/out.err")
    [ "$n" -eq 6 ] && ok "$name: all 6 ranks selected pml $WANT_PML" || bad "$name: $n of 6 ranks selected pml $WANT_PML"
  fi
}
WANT_PML=ob1 run_case "tcp (ob1: self,vader,tcp)" --mca pml_base_verbose 10 --mca pml ob1 --mca btl self,vader,tcp
if command -v ucx_info >/dev/null; then
  WANT_PML=ucx run_case "ucx" --mca pml_base_verbose 10 --mca pml ucx --mca pml_ucx_tls any --mca pml_ucx_devices any --mca osc ucx \
    -x UCX_NET_DEVICES=eth0,lo -x UCX_TLS=tcp,self,sm
else
  echo "skip ucx: ucx_info not found"
fi
[ $FAILS -eq 0 ] && echo "netns_test: all passed" || echo "netns_test: $FAILS failed"
exit $((FAILS > 0))
