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
# llama.cpp build flags. Default: portable x86-64-v3 (AVX2/FMA/F16C/BMI2), NOT -march=native:
#  * a native build on this project's Sapphire-Rapids-class VMs enables the Intel AMX path, which
#    segfaults in ggml_backend_amx_mul_mat for Q8_0/Q4_0/Q4_1 models (llama-cpp-python 0.3.36);
#  * goldens must not depend on the build host's ISA extensions.
# Override with LLAMA_CMAKE_ARGS (e.g. add -DGGML_AVX512=ON ... for a stronger benchmark baseline).
LLAMA_CMAKE_ARGS="${LLAMA_CMAKE_ARGS:--DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON -DGGML_AVX512=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF}"
export CMAKE_ARGS="$LLAMA_CMAKE_ARGS"
export CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}"
LCP_DIR="$WHEELHOUSE/lcp-$(printf '%s' "$LCP_REQ $LLAMA_CMAKE_ARGS" | sha1sum | cut -c1-12)"
mkdir -p "$LCP_DIR"
printf '%s\n' "$LCP_REQ" "$LLAMA_CMAKE_ARGS" >"$LCP_DIR/BUILD_ARGS"
if ! ls "$LCP_DIR"/llama_cpp_python-*.whl >/dev/null 2>&1; then
  echo "[setup_venv] building $LCP_REQ wheel in background (CMAKE_ARGS=$CMAKE_ARGS; log: $LCP_DIR/build.log)"
  "$VENV/bin/python" -m pip wheel --no-cache-dir --no-deps -w "$LCP_DIR" "$LCP_REQ" >"$LCP_DIR/build.log" 2>&1 &
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
  wait "$LCP_PID" || { tail -50 "$LCP_DIR/build.log"; exit 1; }
fi
# force: the same llama-cpp-python version may already be installed with other build flags
"$VENV/bin/python" -m pip install --no-deps --force-reinstall "$LCP_DIR"/llama_cpp_python-*.whl
"$VENV/bin/python" -m pip install -r "$ROOT/tools/requirements.txt" --find-links "$LCP_DIR"
"$VENV/bin/python" - <<'PY'
import torch, transformers, gguf, llama_cpp, numpy, safetensors
print(llama_cpp.llama_print_system_info().decode())
print("[setup_venv] ok: torch", torch.__version__, "transformers", transformers.__version__,
      "gguf", __import__("importlib.metadata").metadata.version("gguf"), "llama_cpp", llama_cpp.__version__,
      "numpy", numpy.__version__)
PY
