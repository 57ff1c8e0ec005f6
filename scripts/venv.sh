# Sourced by the scripts: ensures the virtualenv $VENV (default .venv) exists with the project
# installed; the argument is the pip requirement (".", or ".[test]").
VENV="${DEEPLAB_VENV:-.venv}"
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --upgrade pip
fi
"$VENV/bin/pip" install --quiet -e "$1"
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"
