#!/usr/bin/env bash
# Install, build and run every test (unit, model goldens, CLI end to end).
#   scripts/test.sh [ctest args...]
set -euo pipefail
cd "$(dirname "$0")/.."
# Packages for tests/cluster (one-node SLURM, network-namespace hosts). Optional: when
# apt is slow or unreachable those tests are skipped (exit 77) instead of failing the run.
timeout "${CLUSTER_DEPS_TIMEOUT:-600}" bash scripts/setup-deps.sh --slurm --netns ||
  echo "test.sh: could not install slurm-wlm/munge/iproute2; tests/cluster will be skipped" >&2
bash scripts/build.sh
BUILD_DIR=${BUILD_DIR:-build}
ctest --test-dir "$BUILD_DIR" --output-on-failure -j "${JOBS:-$(nproc)}" "$@"
