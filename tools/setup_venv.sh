#!/usr/bin/env bash
# Creates /work/main/.venv-tools (git-ignored) with the pinned Python tooling used to
# regenerate golden fixtures (tools/requirements.txt, tools/requirements-nodeps.txt).
#
#   bash tools/setup_venv.sh            # create / update the venv
#   source .venv-tools/bin/activate
#
# Notes:
#  * torch from PyPI brings large CUDA wheels (several GB). This is accepted: the venv is
#    only for fixture generation / benchmarking, never for CI.
#  * llama-cpp-python compiles llama.cpp from source (several minutes on 2 cores). To save
#    time its wheel is built in the background while the rest installs.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV:-$ROOT/.venv-tools}"
PY="${PYTHON:-python3}"
WHEELHOUSE="$VENV/wheelhouse"

if [[ ! -x "$VENV/bin/python" ]]; then
  "$PY" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --upgrade pip wheel >/dev/null
mkdir -p "$WHEELHOUSE"

LCP_REQ="$(grep -E '^llama-cpp-python==' "$ROOT/tools/requirements.txt")"
export CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}"
if ! ls "$WHEELHOUSE"/llama_cpp_python-"${LCP_REQ#*==}"-*.whl >/dev/null 2>&1; then
  echo "[setup_venv] building $LCP_REQ wheel in background (log: $WHEELHOUSE/build.log)"
  "$VENV/bin/python" -m pip wheel --no-deps -w "$WHEELHOUSE" "$LCP_REQ" >"$WHEELHOUSE/build.log" 2>&1 &
  LCP_PID=$!
else
  LCP_PID=""
fi

echo "[setup_venv] installing everything else"
grep -vE '^llama-cpp-python==' "$ROOT/tools/requirements.txt" >"$WHEELHOUSE/req-rest.txt"
"$VENV/bin/python" -m pip install -r "$WHEELHOUSE/req-rest.txt"
"$VENV/bin/python" -m pip install --no-deps -r "$ROOT/tools/requirements-nodeps.txt"

if [[ -n "$LCP_PID" ]]; then
  echo "[setup_venv] waiting for llama-cpp-python build"
  wait "$LCP_PID" || { tail -50 "$WHEELHOUSE/build.log"; exit 1; }
fi
"$VENV/bin/python" -m pip install --find-links "$WHEELHOUSE" -r "$ROOT/tools/requirements.txt"
"$VENV/bin/python" - <<'PY'
import torch, transformers, gguf, llama_cpp, numpy, safetensors
print("[setup_venv] ok: torch", torch.__version__, "transformers", transformers.__version__,
      "gguf", getattr(gguf, "__version__", "?"), "llama_cpp", llama_cpp.__version__,
      "numpy", numpy.__version__)
PY
