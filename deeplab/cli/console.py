"""What a binary prints: the project's lines, warnings and errors; TensorFlow's start-up
chatter and INFO only when asked for with absl's ``-v`` / ``--verbosity``.

- Before TensorFlow is imported (:func:`start`, run by ``deeplab.cli``'s ``__init__``):
  the C++ log level (``TF_CPP_MIN_LOG_LEVEL``, unless the user set it) and the filtered start-up
  chatter (:mod:`deeplab.cli.startup_chatter`).
- After absl parsed the flags (:func:`configure_logging`, run by
  :func:`deeplab.cli.runner.run_binary`): one logger for the project's lines (``deeplab``,
  at INFO, on stderr without absl's prefix; ``warning: `` before a warning), the records
  of other libraries from WARNING up (TensorFlow's strategy and checkpoint-sharding INFO
  hidden), each record written once.
- ``-v N`` / ``--verbosity=N`` keeps absl's and TensorFlow's own console: every logger at
  that level with absl's prefixes, and the C++ log level that ``-v`` names (0 for ``-v 0``
  and up, ``-v -1`` is 1, ..., as absl's INFO 0 / WARNING -1 / ERROR -2 / FATAL -3).
"""

from __future__ import annotations

import collections
import logging
import os
import re
import sys
from collections.abc import Sequence

from absl import logging as absl_logging

from deeplab import tf_log_level
from deeplab.cli import startup_chatter

PROJECT_LOGGER = "deeplab"
_VERBOSITY = re.compile(r"--?(v|verbosity)(=(.*))?")
# Whether start() set up this process as a binary (before TensorFlow was imported).
_started = False


def requested_verbosity(argv: Sequence[str]) -> int | None:
    """The ``-v`` / ``--verbosity`` value of a command line, read before absl parses it (so
    before TensorFlow is imported); None when not given or not a number.

    Args:
        argv: the arguments after the program name.
    """
    value = None
    for index, argument in enumerate(argv):
        if argument == "--":
            break
        match = _VERBOSITY.fullmatch(argument)
        if match:
            text = match.group(3) if match.group(2) else (
                argv[index + 1] if index + 1 < len(argv) else "")
            try:
                value = int(text)
            except ValueError:
                pass
    return value


def cpp_level_for(verbosity: int) -> int:
    """The C++ log level for absl's verbosity: -v 0 and up show all, -v -3 FATAL only."""
    return min(max(-verbosity, 0), 3)


def start(argv: Sequence[str] | None = None) -> None:
    """Sets up the console of a binary before TensorFlow is imported; does nothing once it
    is (its C++ side read its settings at import).

    Args:
        argv: the command line's arguments (default ``sys.argv[1:]``).
    """
    global _started
    if "tensorflow" in sys.modules:
        return
    _started = True
    verbosity = requested_verbosity(sys.argv[1:] if argv is None else argv)
    if verbosity is not None:
        # Asked for: TensorFlow's console as it is, at the level -v names.
        tf_log_level.set_default(cpp_level_for(verbosity))
        return
    tf_log_level.set_default()
    startup_chatter.filter_tensorflow_import(tf_log_level.current())


def is_project_record(record: logging.LogRecord) -> bool:
    """Whether ``record`` comes from the project's logger (``deeplab`` or below)."""
    return record.name == PROJECT_LOGGER or record.name.startswith(PROJECT_LOGGER + ".")


class ProjectFormatter(logging.Formatter):
    """absl's formatter, except for the project's lines: those as they are (no "I1207
    12:00:00.000000 pid file:line] " prefix), a warning or error starting with ``warning: ``
    / ``error: `` as the trainer's own warning lines.

    Args:
        others: the formatter of the other records (absl's).
    """

    def __init__(self, others: logging.Formatter | None):
        super().__init__()
        self.others = others or logging.Formatter()

    def format(self, record: logging.LogRecord) -> str:
        if not is_project_record(record):
            return self.others.format(record)
        message = super().format(record)
        if record.levelno >= logging.WARNING:
            return f"{'warning' if record.levelno == logging.WARNING else 'error'}: {message}"
        return message


class OtherLibrariesWarnings(logging.Filter):
    """The project's records, and those of other libraries from WARNING up (INFO and DEBUG
    only from loggers named in ``--logger_levels``). On absl's handler: a filter rather than
    a logger level, because TensorFlow sets absl's verbosity back to INFO by itself (around
    every SavedModel save).

    Args:
        named: the loggers ``--logger_levels`` names.
    """

    def __init__(self, named=()):
        super().__init__()
        self.named = tuple(named)

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING or is_project_record(record) or any(
            record.name == name or record.name.startswith(name + ".") for name in self.named)


def configure_logging(values) -> None:
    """The Python loggers of a binary, once absl parsed the flags and put its handler on
    the root logger. A process that imported TensorFlow before ``deeplab.cli`` (a test or
    a notebook calling a binary's ``run``) keeps its logging as it is.

    Args:
        values: the parsed absl flags (``flags.FLAGS``).
    """
    if not _started:
        return
    _write_tensorflow_records_once()
    if values["verbosity"].present:
        return  # absl's console, as asked
    project = logging.getLogger(PROJECT_LOGGER)
    if PROJECT_LOGGER not in values.logger_levels:
        project.setLevel(logging.INFO)
    handler = absl_logging.get_absl_handler()
    handler.addFilter(OtherLibrariesWarnings(values.logger_levels))
    # --showprefixforinfo (absl's flag) keeps absl's prefix on the project's lines too.
    if not values["showprefixforinfo"].present:
        handler.setFormatter(ProjectFormatter(handler.python_handler.formatter))


def _write_tensorflow_records_once() -> None:
    """TensorFlow's logger gets a stderr handler of its own when it is created before absl's
    handler is on the root logger, so each of its records came out twice ("INFO:tensorflow:"
    and absl's line): it keeps absl's only."""
    tensorflow_logger = logging.getLogger("tensorflow")
    if logging.root.handlers:
        for handler in list(tensorflow_logger.handlers):
            if isinstance(handler, logging.StreamHandler) and not isinstance(
                    handler, logging.FileHandler):
                tensorflow_logger.removeHandler(handler)


def describe_devices() -> str:
    """One line naming TensorFlow's version, the device and the kernels that will run
    ("TensorFlow 2.21.0 on the CPU: 2 threads, oneDNN kernels")."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        names = collections.Counter(
            tf.config.experimental.get_device_details(gpu).get("device_name", gpu.name)
            for gpu in gpus)
        listing = ", ".join(name if count == 1 else f"{count}x {name}"
                            for name, count in names.items())
        return f"TensorFlow {tf.__version__} on {len(gpus)} GPU{'s' * (len(gpus) > 1)}: {listing}"
    threads = (tf.config.threading.get_intra_op_parallelism_threads()
               or len(getattr(os, "sched_getaffinity", lambda _: range(os.cpu_count() or 1))(0)))
    return f"TensorFlow {tf.__version__} on the CPU: {threads} threads, {_cpu_kernels()}"


def _cpu_kernels() -> str:
    setting = os.environ.get("TF_ENABLE_ONEDNN_OPTS")
    try:
        from tensorflow.python.util import _pywrap_util_port

        onednn = bool(_pywrap_util_port.IsMklEnabled())
    except (ImportError, AttributeError):  # a TensorFlow without the query: the setting
        onednn = setting not in (None, "0", "false", "False")
    if onednn:
        return "oneDNN kernels"
    return f"portable kernels (TF_ENABLE_ONEDNN_OPTS={setting})" if setting else (
        "portable kernels")


def log_devices() -> None:
    """Writes :func:`describe_devices` through the project's logger."""
    logging.getLogger(PROJECT_LOGGER).info(describe_devices())
