#!/usr/bin/env bash
# A one-node SLURM "cluster" on 127.0.0.1 for tests and demos: root, no systemd, no cgroups.
#   slurm-local.sh start    write $SLURM_DIR/etc/slurm.conf, start munged, slurmctld, slurmd; wait for idle
#   slurm-local.sh stop     cancel jobs, stop slurmd, slurmctld, munged by their pid files
#   slurm-local.sh status   sinfo + squeue
#   slurm-local.sh env      print the export line clients need (SLURM_CONF)
# Env: SLURM_DIR (/tmp/tessera-slurm), SLURM_CPUS ($(nproc)), SLURM_PORT_BASE (16917: ctld, +1 slurmd).
# Clients (sbatch/srun/sinfo) need: export SLURM_CONF=$SLURM_DIR/etc/slurm.conf
# Keep SLURM_DIR short: munged's socket path must fit a Unix socket name (108 bytes).
set -euo pipefail
S=${SLURM_DIR:-/tmp/tessera-slurm}
CPUS=${SLURM_CPUS:-$(nproc)}
PORT=${SLURM_PORT_BASE:-16917}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export SLURM_CONF=$S/etc/slurm.conf
M=$S/munge

# alive PIDFILE: process exists and is not a zombie (PID 1 here reaps orphans only now and then)
alive() {
  [[ -f $1 ]] || return 1
  local st; st=$(ps -o stat= -p "$(cat "$1" 2>/dev/null)" 2>/dev/null) || return 1
  [[ -n $st && $st != Z* ]]
}

write_conf() {
  cat >"$SLURM_CONF" <<EOF
ClusterName=local
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort=$PORT
SlurmdPort=$((PORT + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$M/munge.socket
StateSaveLocation=$S/state
SlurmdSpoolDir=$S/spool/slurmd-%n
SlurmctldPidFile=$S/run/slurmctld.pid
SlurmdPidFile=$S/run/slurmd.pid
SlurmctldLogFile=$S/log/slurmctld.log
SlurmdLogFile=$S/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
# no cgroups: plain /proc based process tracking, no task binding
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SwitchType=switch/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
# Debian's Open MPI 4.1.4 uses external PMIx 4.2 -> use srun --mpi=pmix (pmi2 does NOT work with it)
MpiDefault=pmix
ReturnToService=2
SchedulerType=sched/backfill
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
KillWait=5
MinJobAge=300
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$CPUS State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
EOF
}

start() {
  command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v munged >/dev/null ||
    { echo "slurm-local: slurmctld/slurmd/munged not found: run scripts/setup-deps.sh --slurm" >&2; exit 1; }
  if alive "$S/run/slurmctld.pid"; then echo "slurm-local: already running"; return 0; fi
  local t0; t0=$(date +%s%N)
  mkdir -p "$S"/{etc,state,spool,log,run} "$M"
  chmod 755 "$M"                      # munged: socket dir must be executable by all
  if [[ ! -s $M/munge.key ]]; then    # munged as root needs a root-owned 0400 key
    mungekey --create --keyfile="$M/munge.key" 2>/dev/null ||
      { dd if=/dev/urandom of="$M/munge.key" bs=128 count=1 status=none; }
    chmod 400 "$M/munge.key"
  fi
  write_conf
  munged --socket="$M/munge.socket" --key-file="$M/munge.key" --log-file="$M/munged.log" \
         --pid-file="$M/munged.pid" --seed-file="$M/munged.seed"
  munge -n --socket="$M/munge.socket" | unmunge --socket="$M/munge.socket" >/dev/null
  slurmctld -c -f "$SLURM_CONF"       # -c: start with clean state (no jobs from an earlier run)
  slurmd -f "$SLURM_CONF" -N localhost
  local st=""
  for _ in $(seq 150); do
    st=$(sinfo -h -n localhost -o %T 2>/dev/null || true)
    [[ $st == idle ]] && break
    sleep 0.2
  done
  if [[ $st != idle ]]; then
    echo "slurm-local: node state '$st' (expected idle); logs in $S/log" >&2
    tail -n 20 "$S/log/slurmctld.log" "$S/log/slurmd.log" >&2 || true
    exit 1
  fi
  printf 'slurm-local: up in %d ms (node localhost, %s CPUs)\nexport SLURM_CONF=%s\n' \
    $((($(date +%s%N) - t0) / 1000000)) "$CPUS" "$SLURM_CONF"
}

stop_pidfile() {  # stop_pidfile FILE NAME: SIGTERM the recorded PID, wait up to 10s, then SIGKILL
  local f=$1 name=$2 pid
  alive "$f" || { rm -f "$f"; return 0; }
  pid=$(cat "$f")
  [[ $(ps -o comm= -p "$pid") == "$name"* ]] || { echo "pid $pid is not $name; left alone" >&2; return 0; }
  kill "$pid"
  for _ in $(seq 50); do alive "$f" || break; sleep 0.2; done
  if alive "$f"; then kill -9 "$pid"; fi
  rm -f "$f"
}

stop() {
  if alive "$S/run/slurmctld.pid"; then
    scancel --full --quiet $(squeue -h -o %i 2>/dev/null) 2>/dev/null || true
    for _ in $(seq 50); do [[ -z $(squeue -h 2>/dev/null) ]] && break; sleep 0.2; done
  fi
  stop_pidfile "$S/run/slurmd.pid" slurmd
  stop_pidfile "$S/run/slurmctld.pid" slurmctld
  stop_pidfile "$M/munged.pid" munged
  echo "slurm-local: stopped (logs kept in $S/log)"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) sinfo; squeue ;;
  env) echo "export SLURM_CONF=$SLURM_CONF" ;;
  *) echo "usage: $0 start|stop|status|env" >&2; exit 2 ;;
esac
