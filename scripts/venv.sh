# Sourced by the scripts: ensures the virtualenv $VENV (default .venv) exists with the project
# installed; the argument is the pip requirement (".", or ".[test]"). The install is skipped
# when this venv already holds it for the same setup.py and requirement (a stamp file), so
# running the scripts again costs no pip resolve.
VENV="${DEEPLAB_VENV:-.venv}"
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --upgrade pip
fi
STAMP="$VENV/.deeplab-installed"
WANT="$(cat setup.py pyproject.toml | sha256sum | cut -c1-16) $1 $(pwd)"
if ! grep -qxF -- "$WANT" "$STAMP" 2>/dev/null; then
  "$VENV/bin/pip" install --quiet -e "$1"
  echo "$WANT" >> "$STAMP"
fi
