#!/usr/bin/env bash
# Create (or reuse) the virtualenv used by the Ray peer comparison and install the
# pinned dependencies from scripts/peer/requirements.txt. Idempotent: re-running it
# reuses the venv and pip skips what is already installed at the pinned version.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="${IOG_PEER_VENV:-$HOME/.cache/iog/peer-venv}"
python="${IOG_PEER_PYTHON:-python3.11}"
req="$here/requirements.txt"

if ! command -v "$python" >/dev/null 2>&1; then
    echo "setup.sh: $python not found (set IOG_PEER_PYTHON to a Python 3.11 interpreter)" >&2
    exit 1
fi

if [[ -x "$venv/bin/python" ]]; then
    echo "setup.sh: reusing virtualenv $venv ($("$venv/bin/python" --version 2>&1))"
else
    echo "setup.sh: creating virtualenv $venv with $python ($("$python" --version 2>&1))"
    mkdir -p "$(dirname "$venv")"
    "$python" -m venv "$venv"
fi

echo "setup.sh: installing pinned requirements from $req"
"$venv/bin/python" -m pip install --disable-pip-version-check --quiet -r "$req"

echo "setup.sh: installed: $("$venv/bin/python" -c 'import ray; print("ray", ray.__version__)')"
echo "setup.sh: run with: $venv/bin/python $here/ray_tasks.py --json"
