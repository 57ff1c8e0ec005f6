#!/usr/bin/env bash
# Installs deeplab-keras with its test extra into a virtualenv and runs the tests.
#   bash scripts/test.sh           # the quick tier: every unit and component test (no slow runs)
#   bash scripts/test.sh --full    # everything: the end-to-end runs too (what CI runs)
#   bash scripts/test.sh --slow    # only the end-to-end runs (@pytest.mark.slow)
#   bash scripts/test.sh tests/test_ops.py -k atrous   # pytest arguments select, in any tier
#   TF_ENABLE_ONEDNN_OPTS=1 bash scripts/test.sh tests/test_ops.py   # with oneDNN's kernels
#   DEEPLAB_VENV=/path bash scripts/test.sh                          # another venv
# The tests run on TensorFlow's portable kernels (TF_ENABLE_ONEDNN_OPTS=0, those of ARM and
# AVX2-only x86; oneDNN is on by default only on some CPUs), so a green run does not depend on
# the CPU it ran on. Reference files from the original release are read from
# $DEEPLAB_REFERENCE_DIR (default ../shared/artifacts when present; tests that need them skip
# otherwise). At the end: the tier's time against its budget and the slowest files.
set -euo pipefail
cd "$(dirname "$0")/.."
tier=quick
case "${1:-}" in
  --full) tier=full; shift ;;
  --slow) tier=slow; shift ;;
esac
source scripts/venv.sh ".[test]"
export TF_ENABLE_ONEDNN_OPTS="${TF_ENABLE_ONEDNN_OPTS:-0}"
# The binaries set their own console (deeplab.cli.console); pytest's process imports
# TensorFlow itself, without TensorFlow's start-up INFO and WARNING lines.
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"
# Budgets in seconds on 2 cores of an AMD EPYC Zen 4 (issue 29): the quick tier 8 minutes;
# the full suite must keep .ci/run (venv, ruff, both tiers, the oneDNN pass) within 25.
case $tier in
  quick) marker=(-m "not slow"); budget=480 ;;
  slow) marker=(-m slow); budget=900 ;;
  full) marker=(); budget=1320 ;;
esac
# Two workers (pytest-xdist), each test file on one of them so its module fixtures are built
# once; files start longest first (tests/suite_budget.py orders them by tests/durations.json)
# so both workers finish together. DEEPLAB_TEST_WORKERS=0 runs in this process.
start=$SECONDS
status=0
"$VENV/bin/python" -m pytest -q -n "${DEEPLAB_TEST_WORKERS:-2}" --dist loadfile \
  --no-loadscope-reorder --durations=15 ${marker[@]+"${marker[@]}"} "$@" || status=$?
took=$((SECONDS - start))
echo "$tier tier: tests took $took s (budget $budget s on 2 cores of a Zen 4$(
  [ "$took" -gt "$budget" ] && echo '; OVER BUDGET on this machine'))"
exit $status
