"""Running a binary: absl flags, then the errors a user can fix as one line, not a traceback."""

from __future__ import annotations

import sys
from collections.abc import Callable

from absl import app

from deeplab.data.errors import DataError

# What a user's flags, files or data cause (a bad value, a missing or unreadable file, a
# corrupt record); anything else is a bug and keeps its traceback.
USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, OSError, DataError)


def run_binary(name: str, main: Callable[[list[str]], object],
               extra_errors: tuple[type[BaseException], ...] = (), prefix: str | None = None,
               ) -> None:
    """``app.run(main)`` where a user error becomes ``<name>: <message>`` and exit status 1.

    Args:
        name: the binary's name, the start of its error lines (``deeplab-train``).
        main: absl's main; a returned int or string is the exit status / message.
        extra_errors: the binary's own error types that a user can fix.
        prefix: the start of error lines instead of ``<name>: `` (the converters print
            ``error: `` as the original's scripts did).
    """
    start = f"{name}: " if prefix is None else prefix

    def guarded(argv):
        try:
            return main(argv)
        except USER_ERRORS + tuple(extra_errors) as error:
            sys.exit(f"{start}{error}")
        except KeyboardInterrupt:
            print(f"{start}interrupted; what was complete is kept, nothing is half-written",
                  file=sys.stderr)
            sys.exit(130)

    app.run(guarded)
