#!/usr/bin/env bash
# A Python virtual environment with SciPy, for the tests that check retailops' statistics
# (canary analysis: Mann-Whitney U, two-proportion z-test) against independently computed
# reference values. Cached in $RETAILOPS_SANDBOX_CACHE/py (PyPI, pinned version); idempotent.
# Prints the venv's bin folder as its last line. `scripts/sandbox.sh up` runs it.
set -euo pipefail
: "${RETAILOPS_SANDBOX_CACHE:=$HOME/.cache/retailops-sandbox}"
SCIPY_VERSION=1.17.1
VENV="$RETAILOPS_SANDBOX_CACHE/py"
ready() { "$VENV/bin/python" -c "import scipy, sys; sys.exit(scipy.__version__ != '$SCIPY_VERSION')" 2>/dev/null; }
if ! ready; then
  # A half-built venv from an interrupted run is started over.
  rm -rf "$VENV"
  python3 -m venv "$VENV" >&2
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-input "scipy==$SCIPY_VERSION" >&2
  ready || { echo "setup-python: scipy $SCIPY_VERSION does not import from $VENV" >&2; exit 1; }
fi
echo "$VENV/bin"
