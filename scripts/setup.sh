#!/usr/bin/env bash
# Create the project's virtual environment and install reflect-rl into it (editable, with the dev and alfworld extras).
#
# torch is installed first, so that pip never resolves it on its own:
#   * a CPU machine gets the CPU build (a local wheel if pip's find-links has one, else PyTorch's CPU index);
#   * a machine with an NVIDIA driver (nvidia-smi) gets PyPI's default build, which is the CUDA one.
# Override with TORCH_SPEC (default torch==2.13.0) and TORCH_INDEX_URL (e.g. https://download.pytorch.org/whl/cu128).
set -euo pipefail

VENV="${1:-.venv}"
PYTHON="${PYTHON:-python3}"
TORCH_SPEC="${TORCH_SPEC:-torch==2.13.0}"
STAMP="$VENV/.reflect-rl-installed"

if [[ -f "$STAMP" && "$STAMP" -nt pyproject.toml ]]; then
    exit 0
fi

"$PYTHON" -c 'import sys; assert sys.version_info >= (3, 10), "Python 3.10 or newer is needed"' || {
    echo "error: $PYTHON is older than 3.10; set PYTHON=python3.11 (or newer) and run again." >&2
    exit 1
}
[[ -x "$VENV/bin/python" ]] || "$PYTHON" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip --quiet --disable-pip-version-check)

local_cpu_wheel() {
    # A CPU build of torch in one of pip's find-links directories (as on our CI machines).
    local dirs="${PIP_FIND_LINKS:-} $("$VENV/bin/python" -m pip config get global.find-links 2>/dev/null || true)"
    local dir
    for dir in $dirs; do
        compgen -G "${dir#file://}/torch-*+cpu-*.whl" >/dev/null && return 0
    done
    return 1
}

if "$VENV/bin/python" -c 'import torch' 2>/dev/null; then
    echo "torch $("$VENV/bin/python" -c 'import torch; print(torch.__version__)') already installed"
elif [[ -n "${TORCH_INDEX_URL:-}" ]]; then
    echo "installing $TORCH_SPEC from $TORCH_INDEX_URL"
    "${PIP[@]}" install "$TORCH_SPEC" --index-url "$TORCH_INDEX_URL" --extra-index-url https://pypi.org/simple
elif command -v nvidia-smi >/dev/null 2>&1; then
    echo "NVIDIA driver found: installing the CUDA build of $TORCH_SPEC from PyPI"
    "${PIP[@]}" install "$TORCH_SPEC"
elif local_cpu_wheel; then
    echo "no GPU: installing the CPU build of $TORCH_SPEC from the local wheel"
    "${PIP[@]}" install "$TORCH_SPEC"
else
    echo "no GPU: installing the CPU build of $TORCH_SPEC from PyTorch's CPU index"
    "${PIP[@]}" install "$TORCH_SPEC" --index-url https://download.pytorch.org/whl/cpu \
        --extra-index-url https://pypi.org/simple
fi

"${PIP[@]}" install -e ".[dev,alfworld]"
touch "$STAMP"
echo "environment ready: $VENV ($("$VENV/bin/python" -c 'import torch; print("torch", torch.__version__)'))"
