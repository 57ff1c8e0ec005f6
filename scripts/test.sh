#!/usr/bin/env bash
# Installs deeplab-keras with its test extra into a virtualenv and runs the whole test suite.
#   bash scripts/test.sh            # venv in .venv (created if missing)
#   DEEPLAB_VENV=/path bash scripts/test.sh
# Reference files from the original release are read from $DEEPLAB_REFERENCE_DIR
# (default ../shared/artifacts when present; tests that need them skip otherwise).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/venv.sh ".[test]"
exec "$VENV/bin/python" -m pytest -q "$@"
