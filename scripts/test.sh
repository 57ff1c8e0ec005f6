#!/usr/bin/env bash
# Installs deeplab-keras with its test extra into a virtualenv and runs the whole test suite.
#   bash scripts/test.sh            # venv in .venv (created if missing)
#   DEEPLAB_VENV=/path bash scripts/test.sh
#   TF_ENABLE_ONEDNN_OPTS=1 bash scripts/test.sh tests/test_ops.py   # with oneDNN's kernels
#   bash scripts/test.sh -m "not slow"   # the quick loop: no end-to-end training runs
# The suite runs on TensorFlow's portable kernels (TF_ENABLE_ONEDNN_OPTS=0, those of ARM and
# AVX2-only x86; oneDNN is on by default only on some CPUs), so a green run does not depend on
# the CPU it ran on. Reference files from the original release are read from
# $DEEPLAB_REFERENCE_DIR (default ../shared/artifacts when present; tests that need them skip
# otherwise).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/venv.sh ".[test]"
export TF_ENABLE_ONEDNN_OPTS="${TF_ENABLE_ONEDNN_OPTS:-0}"
# Two workers (pytest-xdist), each test file on one of them so its module fixtures are built
# once: 1.74x faster on 2 cores (most of a test's time is single-threaded tracing, process
# starts and Python), DEEPLAB_TEST_WORKERS=0 runs in this process. --durations: the slowest
# tests, so a slow CI run shows where its time goes. -m "not slow" skips the end-to-end runs
# for a quick local loop (this script without it runs everything, as CI does).
start=$SECONDS
status=0
"$VENV/bin/python" -m pytest -q -n "${DEEPLAB_TEST_WORKERS:-2}" --dist loadfile --durations=25 \
  "$@" || status=$?
echo "tests took $((SECONDS - start)) s"
exit $status
