#!/usr/bin/env bash
# Several "hosts" on one machine, as network namespaces (root; iproute2 + util-linux).
#   scripts/netns-hosts.sh up          create $P-sw (a bridge) and $P-h0..h{N-1}: one veth each,
#                                      eth0 = $NET.10+i/24, hostname h<i> (given by netns-rsh);
#                                      writes $STATE/hostfile (Open MPI), $STATE/hosts (the rsh
#                                      map) and /etc/netns/$P-h<i>/hosts so that every host name
#                                      resolves inside every namespace (`ip netns exec` mounts it
#                                      over /etc/hosts)
#   scripts/netns-hosts.sh down        end leftover processes, delete the namespaces and files
#   scripts/netns-hosts.sh status      namespaces and addresses
#   scripts/netns-hosts.sh mpirun ARGS mpirun ARGS from host h0, with scripts/netns-rsh as the
#                                      launcher's ssh and the hostfile (e.g. `mpirun -np 6 tessera ...`);
#                                      the oob keepalive flags make mpirun notice a host whose
#                                      network is gone within ~5 s, before --step-timeout (docs/CLUSTER.md)
#   scripts/netns-hosts.sh exec I CMD  run CMD inside host h<I> (its namespace and hostname)
#   scripts/netns-hosts.sh link I up|down   set eth0 of host h<I> up or down (a network fault)
# Nothing is attached to the root namespace: traffic stays between these namespaces.
# Env: NETNS_PREFIX (tsr), NETNS_HOSTS (3), NETNS_SUBNET (198.18.0: RFC 2544 test range),
#      NETNS_SLOTS (2 per host), NETNS_STATE (/tmp/tessera-netns-$NETNS_PREFIX).
# Parallel runs: give each its own NETNS_PREFIX and NETNS_SUBNET (tests/cluster does).
set -euo pipefail
P=${NETNS_PREFIX:-tsr}
N=${NETNS_HOSTS:-3}
NET=${NETNS_SUBNET:-198.18.0}
SLOTS=${NETNS_SLOTS:-2}
STATE=${NETNS_STATE:-/tmp/tessera-netns-$P}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SW=$P-sw

up() {
  down >/dev/null 2>&1 || true
  mkdir -p "$STATE"
  ip netns add "$SW"
  ip -n "$SW" link set lo up
  ip -n "$SW" link add br0 type bridge
  ip -n "$SW" link set br0 up
  : >"$STATE/hostfile"; : >"$STATE/hosts"
  local map=""
  for ((i = 0; i < N; i++)); do map+="$NET.$((10 + i)) h$i"$'\n'; done
  for ((i = 0; i < N; i++)); do
    local ns=$P-h$i addr=$NET.$((10 + i))
    ip netns add "$ns"
    ip -n "$ns" link set lo up
    # the veth pair is created directly inside the two namespaces (never in the root one)
    ip -n "$ns" link add eth0 type veth peer name "h$i" netns "$SW"
    ip -n "$SW" link set "h$i" master br0 up
    ip -n "$ns" addr add "$addr/24" dev eth0
    ip -n "$ns" link set eth0 up
    echo "$addr slots=$SLOTS" >>"$STATE/hostfile"
    echo "$addr $ns h$i" >>"$STATE/hosts"
    # host names resolve to the namespace addresses (tessera binds its RPC server there)
    mkdir -p "/etc/netns/$ns"
    printf '127.0.0.1 localhost\n%s' "$map" >"/etc/netns/$ns/hosts"
  done
  for ((i = 1; i < N; i++)); do  # wait for the bridge ports to forward
    local ok=0
    for _ in $(seq 50); do
      ip netns exec "$P-h0" ping -c1 -W1 "$NET.$((10 + i))" >/dev/null 2>&1 && { ok=1; break; }
      sleep 0.1
    done
    ((ok)) || { echo "netns-hosts: h0 cannot reach $NET.$((10 + i))" >&2; exit 1; }
  done
  echo "netns-hosts: up: $N hosts h0..h$((N - 1)) ($NET.10..$NET.$((9 + N))), hostfile $STATE/hostfile"
}

down() {
  for ns in $(ip netns list | awk '{print $1}' | grep -E "^$P-(sw|h[0-9]+)$" || true); do
    # processes still inside (orted, ranks): SIGKILL by PID, then delete the namespace
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
    ip netns del "$ns" 2>/dev/null || true
    rm -rf "/etc/netns/$ns"
  done
  rm -rf "$STATE"
  echo "netns-hosts: down ($P)"
}

status() {
  ip netns list | grep -E "^$P-" || echo "(no $P-* namespaces)"
  for ns in $(ip netns list | awk '{print $1}' | grep -E "^$P-h[0-9]+$" || true); do
    echo "$ns: $(ip -n "$ns" -4 -o addr show dev eth0 | awk '{print $4}')"
  done
}

run_mpirun() {
  [[ -f $STATE/hostfile ]] || { echo "netns-hosts: run '$0 up' first" >&2; exit 1; }
  export NETNS_STATE=$STATE
  exec ip netns exec "$P-h0" unshare --uts -- /bin/sh -c 'hostname "$0"; exec "$@"' "h0" \
    mpirun --allow-run-as-root --oversubscribe \
      --hostfile "$STATE/hostfile" \
      --mca plm_rsh_agent "$HERE/netns-rsh" \
      --mca plm_rsh_no_tree_spawn 1 \
      --mca oob_tcp_if_include "$NET.0/24" \
      --mca btl_tcp_if_include "$NET.0/24" \
      --mca oob_tcp_keepalive_time 2 --mca oob_tcp_keepalive_intvl 1 --mca oob_tcp_keepalive_probes 3 \
      "$@"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  mpirun) shift; run_mpirun "$@" ;;
  exec) i=$2; shift 2; exec ip netns exec "$P-h$i" unshare --uts -- /bin/sh -c 'hostname "$0"; exec "$@"' "h$i" "$@" ;;
  link) ip -n "$P-h$2" link set eth0 "$3" ;;
  *) echo "usage: $0 up|down|status|mpirun ARGS...|exec I CMD...|link I up|down" >&2; exit 2 ;;
esac
