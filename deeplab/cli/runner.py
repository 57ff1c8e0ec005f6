"""Running a binary: absl flags, then the errors a user can fix as one line, not a traceback."""

from __future__ import annotations

import re
import sys
from collections.abc import Callable

from absl import app, flags

from deeplab.cli import console
from deeplab.data.errors import DataError
from deeplab.runs.interrupts import Terminated, termination_raises

# What a user's flags, files or data cause (a bad value, a missing or unreadable file, a
# corrupt record); anything else is a bug and keeps its traceback.
USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, OSError, DataError)


def run_binary(name: str, main: Callable[[list[str]], object],
               extra_errors: tuple[type[BaseException], ...] = (), prefix: str | None = None,
               describe_device: bool = False) -> None:
    """``app.run(main)`` where a user error becomes ``<name>: <message>`` and exit status 1.

    Args:
        name: the binary's name, the start of its error lines (``deeplab-train``).
        main: absl's main; a returned int or string is the exit status / message.
        extra_errors: the binary's own error types that a user can fix.
        prefix: the start of error lines instead of ``<name>: `` (the converters print
            ``error: `` as the original's scripts did).
        describe_device: start with a line naming the device and kernels that run (the
            binaries that run a model).
    """
    start = f"{name}: " if prefix is None else prefix
    _show_project_flags_in_help()
    # --help prints __main__'s docstring: the binary's, not the three-line entry point's.
    doc = getattr(sys.modules.get(main.__module__), "__doc__", None)
    if doc and "__main__" in sys.modules:
        sys.modules["__main__"].__doc__ = doc

    def guarded(argv):
        console.configure_logging(flags.FLAGS)
        try:
            if describe_device:
                console.log_devices()
            # SIGTERM / SIGHUP unwind like Ctrl-C: every temporary file is removed on the way.
            with termination_raises():
                return main(argv)
        except USER_ERRORS + tuple(extra_errors) as error:
            sys.exit(f"{start}{user_message(error)}")
        except Terminated as stop:
            print(f"{start}{stop.name}: stopped; what was complete is kept, nothing is "
                  "half-written", file=sys.stderr)
            sys.exit(stop.exit_status)
        except KeyboardInterrupt:
            print(f"{start}interrupted; what was complete is kept, nothing is half-written",
                  file=sys.stderr)
            sys.exit(130)

    app.run(guarded)


def user_message(error: BaseException) -> str:
    """The error's own message: Keras wraps an error raised inside a layer's ``call`` in
    several lines ("Exception encountered when calling ...", the message in ANSI bold, the
    arguments); only the message is the user's business."""
    text = str(error)
    bold = re.search(r"\x1b\[1m(.*?)\x1b\[0m", text, re.DOTALL)
    if "Exception encountered when calling" in text and bold:
        text = bold.group(1)
    return re.sub(r"\x1b\[[0-9;]*m", "", text).strip()


def _show_project_flags_in_help() -> None:
    """``--help`` lists the main module's key flags; ours are defined in ``deeplab.cli``
    modules and shared helpers (and the entry point is a three-line script), so every
    project flag is made a key flag of the main module."""
    values = flags.FLAGS
    for module, module_flags in list(values.flags_by_module_dict().items()):
        if module.startswith("deeplab") or module in ("__main__", sys.argv[0]):
            for flag in module_flags:
                values.register_key_flag_for_module(sys.argv[0], flag)
