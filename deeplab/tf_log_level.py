"""TensorFlow's C++ log level (``TF_CPP_MIN_LOG_LEVEL``): a default set before TensorFlow is
imported, never over the user's own setting.

TensorFlow reads the variable once, when its C++ runtime first logs (during ``import
tensorflow``), so a default only works from the environment before that import: ``import
deeplab`` sets :data:`DEFAULT`; a binary given ``-v`` sets the level ``-v`` asks for
(:mod:`deeplab.cli.console`). Levels: 0 all, 1 no INFO, 2 no INFO or WARNING, 3 FATAL only.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, MutableMapping

VARIABLE = "TF_CPP_MIN_LOG_LEVEL"
# INFO and WARNING hidden: TensorFlow's C++ INFO and WARNING lines describe its internals
# (kernel libraries, graph optimisation notices, iterator status) that a user cannot act
# on; what goes wrong reaches Python as an exception with its message. Errors stay shown.
DEFAULT = 2

# The value this process set (None: it set none), so that a later, more specific default
# (the binaries' -v) may replace ours but never the user's.
_ours: str | None = None


def set_default(level: int = DEFAULT, environ: MutableMapping[str, str] = os.environ,
                modules: Mapping[str, object] = sys.modules) -> bool:
    """Sets ``TF_CPP_MIN_LOG_LEVEL`` to ``level`` unless the user set it or TensorFlow is
    already imported (it would not read it again). Returns whether it was set.

    Args:
        level: 0 (all) to 3 (FATAL only).
        environ: the environment to change (tests pass a dict).
        modules: the imported modules (tests pass a dict).
    """
    global _ours
    if "tensorflow" in modules or environ.get(VARIABLE, _ours) != _ours:
        return False
    _ours = environ[VARIABLE] = str(level)
    return True


def current(environ: Mapping[str, str] = os.environ) -> int:
    """The level in effect, 0-3; unset or unparsable is 0, as TensorFlow reads it.

    Args:
        environ: the environment to read.
    """
    try:
        return min(max(int(environ.get(VARIABLE, "0")), 0), 3)
    except ValueError:
        return 0
