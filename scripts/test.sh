#!/usr/bin/env bash
# Installs deeplab-keras with its test extra into a virtualenv and runs the whole test suite.
#   bash scripts/test.sh            # venv in .venv (created if missing)
#   DEEPLAB_VENV=/path bash scripts/test.sh
# Reference files from the original release are read from $DEEPLAB_REFERENCE_DIR
# (default ../shared/artifacts when present; tests that need them skip otherwise).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${DEEPLAB_VENV:-.venv}"
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --upgrade pip
fi
"$VENV/bin/pip" install --quiet -e ".[test]"
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"
exec "$VENV/bin/python" -m pytest -q "$@"
