#!/usr/bin/env bash
# Run on a development machine (Debian with the googletest package, scripts/setup-deps.sh)
# before a device run of tools/gpu_check.sh: copies the GoogleTest sources into
# .gpu_check/googletest (ignored by .gitignore), the one thing the
# GPU check build needs that the GPU machine lacks. Then call the device tool with
# carry [".gpu_check"] and the command `tools/gpu_check.sh` (docs/GPU.md).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
src=${GTEST_SRC:-/usr/src/googletest}
if [[ ! -f $src/CMakeLists.txt ]]; then
  echo "gpu_check_prepare: no GoogleTest sources at $src (apt-get install googletest, or set GTEST_SRC)" >&2
  exit 1
fi
mkdir -p "$root/.gpu_check"
rm -rf "$root/.gpu_check/googletest"
cp -r "$src" "$root/.gpu_check/googletest"
# Drop what the build does not need (docs, CI files) to keep the carried tree small.
rm -rf "$root/.gpu_check/googletest/docs" "$root/.gpu_check/googletest/ci" 2>/dev/null || true
echo "gpu_check_prepare: $(du -sh "$root/.gpu_check" | cut -f1) in $root/.gpu_check (carry it: [\".gpu_check\"])"
