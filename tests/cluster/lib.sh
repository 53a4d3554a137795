# Shared helpers of the tests/cluster scripts (sourced).
# Exit 77 = skipped (ctest SKIP_RETURN_CODE): wrong user or a missing tool, with the reason.
skip() { echo "SKIP: $*"; exit 77; }
# Daemons (slurmctld, slurmd, munged) live in sbin, which a minimal CI PATH may lack.
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"
need_root() { [ "$(id -u)" -eq 0 ] || skip "needs root (network namespaces / slurmd / munged)"; }
need_tools() { local t; for t in "$@"; do command -v "$t" >/dev/null 2>&1 || skip "'$t' not found (scripts/setup-deps.sh --slurm --netns installs it)"; done; }
need_netns() {
  need_tools ip unshare mpirun ping
  local probe="tsrprobe$$"
  ip netns add "$probe" 2>/dev/null || skip "cannot create network namespaces here (no CAP_SYS_ADMIN?)"
  ip netns del "$probe"
}
now_ms() { echo $(($(date +%s%N) / 1000000)); }
FAILS=0
ok() { echo "ok   $*"; }
bad() { echo "FAIL $*"; FAILS=$((FAILS + 1)); }
# The ranks of a running job: tessera processes whose command line holds $1 (a path unique
# to this test), oldest first.
ranks_of() { pgrep -f -- "$1" | while read -r p; do [ "$(cat /proc/$p/comm 2>/dev/null)" = tessera ] && echo "$p"; done; }
# rank_pid MARKER RANK: the pid of one rank, from its OMPI_COMM_WORLD_RANK / SLURM_PROCID.
rank_pid() {
  local p
  for p in $(ranks_of "$1"); do
    if tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qxE "(OMPI_COMM_WORLD_RANK|PMIX_RANK|SLURM_PROCID)=$2"; then
      echo "$p"; return 0
    fi
  done
  return 1
}
# wait_for SECONDS CMD...: poll CMD every 0.1 s until it succeeds; false after SECONDS.
wait_for() { local n=$(($1 * 10)); shift; while ((n-- > 0)); do "$@" && return 0; sleep 0.1; done; return 1; }
