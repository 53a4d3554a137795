#!/usr/bin/env bash
# Installs every Debian package tessera needs to build, test and benchmark.
# Non-interactive and idempotent: safe for CI (root, no stdin) and for re-runs.
#   scripts/setup-deps.sh            base: compiler, CMake, MPI, UCX, Cap'n Proto, glog,
#                                    GoogleTest/GoogleMock, Google Benchmark
#   scripts/setup-deps.sh --fuzz     also clang (libFuzzer targets, see docs/TESTING.md)
#   scripts/setup-deps.sh --slurm    also slurm-wlm + munge (scripts/slurm-local.sh, tests/cluster)
#   scripts/setup-deps.sh --netns    also iproute2, util-linux, iputils-ping (scripts/netns-hosts.sh)
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

PKGS=(cmake g++ make pkg-config
      libopenmpi-dev openmpi-bin libucx-dev ucx-utils
      capnproto libcapnp-dev libgoogle-glog-dev
      libgtest-dev libgmock-dev libbenchmark-dev)
for a in "$@"; do
  case "$a" in
    --fuzz) PKGS+=(clang libclang-rt-14-dev) ;;
    --slurm) PKGS+=(slurm-wlm munge) ;;
    --netns) PKGS+=(iproute2 util-linux iputils-ping) ;;
    *) echo "setup-deps: unknown option '$a' (known: --fuzz, --slurm, --netns)" >&2; exit 2 ;;
  esac
done

SUDO=()
if [[ $(id -u) -ne 0 ]]; then SUDO=(sudo); fi

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  t0=$(date +%s)
  # Lock::Timeout: wait for a concurrent apt instead of failing at once.
  APT=("${SUDO[@]}" apt-get -o DPkg::Lock::Timeout=600)
  "${APT[@]}" update -qq
  # policy-rc.d: keep the postinst scripts of munge/slurm from starting services
  # (no systemd in CI containers; scripts/slurm-local.sh starts its own daemons).
  rc=/usr/sbin/policy-rc.d; had_rc=1
  if [[ ! -e $rc && $(id -u) -eq 0 ]]; then had_rc=0; printf '#!/bin/sh\nexit 101\n' >"$rc"; chmod +x "$rc"; fi
  "${APT[@]}" install -y -qq --no-install-recommends -o Dpkg::Use-Pty=0 "${missing[@]}" >/dev/null
  ((had_rc)) || rm -f "$rc"
  echo "setup-deps: installed ${#missing[@]} packages in $(( $(date +%s) - t0 ))s: ${missing[*]}"
else
  echo "setup-deps: all ${#PKGS[@]} packages already installed"
fi
