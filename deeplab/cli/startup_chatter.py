"""TensorFlow's start-up chatter: what its C++ runtime writes to stderr while it is imported
and finds its devices, shown only where it says something.

TensorFlow 2.21 logs part of its start-up through absl's C++ logging before anything
initialised it: those lines ignore ``TF_CPP_MIN_LOG_LEVEL`` and each copy of absl in its
libraries adds "WARNING: All log messages before absl::InitializeLog() is called are written
to STDERR" (the oneDNN notice and "Could not find cuda drivers" come twice per process). No
setting reaches them, so while a binary imports TensorFlow and lists its devices
(:func:`filter_tensorflow_import`), file descriptor 2 goes through a filter
(:func:`filtered_stderr`) that shows what :class:`StartupFilter` keeps: every line that is
not a C++ log line (a Python warning, a crash message), C++ log lines at or above the C++
log level (a FATAL line included), and none of the expected failure to start CUDA on a
machine without a GPU driver (or with its GPUs hidden).
"""

from __future__ import annotations

import contextlib
import importlib.abc
import os
import re
import subprocess
import sys
from collections.abc import Iterator, Mapping
from typing import BinaryIO

# absl's / glog's prefix: severity, MMDD, time, thread, file:line] (before absl is
# initialised the date reads 0000 and the time 00:00:<seconds since the epoch>).
LOG_LINE = re.compile(r"([IWEF])\d{4} [\d:.]+\s+\d+ [^\s\]]+:\d+\] ")
SEVERITIES = "IWEF"
# absl's notice that it was used before being initialised: about logging, not the program.
PREINIT_NOTICE = "WARNING: All log messages before absl::InitializeLog() is called"
# TensorFlow's own finding that there is no GPU driver (its CUDA stub, at import) ...
NO_DRIVER = "Could not find cuda drivers"
# ... which makes the attempt to start CUDA fail as an ERROR line when devices are listed.
CUDA_START_FAILED = "failed call to cuInit"
# Lines that start a message of their own (not a continuation of a C++ log line).
NEW_MESSAGE = re.compile(r"Traceback |\S.*:\d+: \w*(Warning|Error): |"
                         r"(DEBUG|INFO|WARNING|ERROR|CRITICAL):")


def nvidia_driver_loaded() -> bool:
    """Whether an NVIDIA kernel driver is loaded (Linux and WSL2)."""
    return any(os.path.exists(path) for path in ("/proc/driver/nvidia/version", "/dev/dxg"))


class StartupFilter:
    """Which lines of TensorFlow's start-up stderr to show, line by line.

    Args:
        min_level: the C++ log level in effect (``TF_CPP_MIN_LOG_LEVEL``, 0-3); at 0 every
            line is shown, as the user asked.
        expect_no_cuda: CUDA cannot start here (no driver, or ``CUDA_VISIBLE_DEVICES``
            hides every GPU), so its failure to start says nothing. TensorFlow's own "Could
            not find cuda drivers" line, when seen, also means so.
    """

    def __init__(self, min_level: int, expect_no_cuda: bool = False):
        self.min_level = min_level
        self.expect_no_cuda = expect_no_cuda
        self._dropping = False

    def shows(self, line: str) -> bool:
        """Whether to show ``line``, the next line of stderr."""
        if self.min_level <= 0:
            return True
        if NO_DRIVER in line:
            self.expect_no_cuda = True
        match = LOG_LINE.match(line)
        if match:
            self._dropping = not self._shown(match.group(1), line)
        elif line.startswith(PREINIT_NOTICE):
            self._dropping = True
        elif self._dropping and NEW_MESSAGE.match(line):
            self._dropping = False
        # Otherwise a continuation line of the message before it (a C++ message with
        # newlines carries the prefix on its first line only): it follows that message.
        return not self._dropping

    def keep(self, text: str) -> str:
        """The lines of ``text`` to show, in order."""
        return "".join(line for line in text.splitlines(keepends=True) if self.shows(line))

    def _shown(self, severity: str, line: str) -> bool:
        if SEVERITIES.index(severity) < self.min_level:
            return False
        return not (self.expect_no_cuda and CUDA_START_FAILED in line)


def forward(source: BinaryIO, target: BinaryIO, startup_filter: StartupFilter) -> None:
    """Copies the lines of ``source`` that the filter shows to ``target`` as they come."""
    for raw in source:
        if startup_filter.shows(raw.decode("utf-8", "replace")):
            target.write(raw)
            target.flush()


@contextlib.contextmanager
def filtered_stderr(min_level: int, expect_no_cuda: bool) -> Iterator[None]:
    """Runs the block with file descriptor 2 (C++ and Python alike) going through a
    :class:`StartupFilter` to stderr.

    The filter is a child process (this file run as a script, standard library only, about
    20 ms): lines come out as they are written, and when TensorFlow aborts during its
    import (a CPU without the instructions it was built for) the child still writes the
    FATAL line that says why. It ignores Ctrl-C (its own session) and ends when the block
    ends, after the last line.

    Args:
        min_level: the C++ log level in effect.
        expect_no_cuda: see :class:`StartupFilter`.
    """
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):  # no usable stderr: nothing to filter
        yield
        return
    read_end, write_end = os.pipe()
    try:
        child = subprocess.Popen(
            [sys.executable, "-I", "-S", os.path.abspath(__file__), str(min_level),
             str(int(expect_no_cuda))],
            stdin=read_end, stdout=saved, stderr=saved, start_new_session=True)
    except (OSError, TypeError):  # no interpreter to start (an embedded Python)
        os.close(read_end)
        os.close(write_end)
        os.close(saved)
        yield
        return
    os.close(read_end)
    os.dup2(write_end, 2)
    os.close(write_end)
    try:
        yield
    finally:
        with contextlib.suppress(OSError, ValueError):
            sys.stderr.flush()
        os.dup2(saved, 2)  # closes the pipe's last write end here: the child sees its end
        os.close(saved)
        with contextlib.suppress(subprocess.TimeoutExpired):
            # Something TensorFlow started may hold the pipe open: then the child goes on
            # forwarding its lines in the background.
            child.wait(timeout=10)


class _FilteredImport(importlib.abc.MetaPathFinder):
    """Finds ``tensorflow`` with the other finders and wraps its loader so that the import,
    and the listing of devices right after it (where CUDA starts), run under
    :func:`filtered_stderr`. Removes itself at the first import of TensorFlow."""

    def __init__(self, min_level: int, expect_no_cuda: bool):
        self.settings = min_level, expect_no_cuda

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "tensorflow":
            return None
        with contextlib.suppress(ValueError):
            sys.meta_path.remove(self)
        for finder in sys.meta_path:
            find = getattr(finder, "find_spec", None)
            spec = find(fullname, path, target) if find else None
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = _FilteredLoader(spec.loader, self.settings)
                return spec
        return None


class _FilteredLoader(importlib.abc.Loader):
    def __init__(self, loader, settings: tuple[int, bool]):
        self.loader = loader
        self.settings = settings

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module) -> None:
        try:
            with filtered_stderr(*self.settings):
                self.loader.exec_module(module)
                # CUDA starts (or fails to) when devices are first listed: here, filtered
                # too. Physical devices stay configurable after this (visible devices,
                # logical CPUs, memory growth).
                with contextlib.suppress(Exception):
                    module.config.list_physical_devices()
        finally:
            # The module keeps TensorFlow's own loader, not this wrapper.
            module.__loader__ = self.loader
            if getattr(module, "__spec__", None) is not None:
                module.__spec__.loader = self.loader

    def __getattr__(self, name):
        return getattr(self.loader, name)


def filter_tensorflow_import(min_level: int, environ: Mapping[str, str] = os.environ) -> bool:
    """Makes the first ``import tensorflow`` of this process (and its first listing of
    devices) write stderr through :func:`filtered_stderr`. Returns False (and does nothing)
    when TensorFlow is imported already or ``min_level`` is 0 (everything asked for).

    Args:
        min_level: the C++ log level in effect.
        environ: where ``CUDA_VISIBLE_DEVICES`` is read.
    """
    if "tensorflow" in sys.modules or min_level <= 0:
        return False
    hidden = environ.get("CUDA_VISIBLE_DEVICES") in ("", "-1")
    sys.meta_path.insert(0, _FilteredImport(min_level, hidden or not nvidia_driver_loaded()))
    return True


if __name__ == "__main__":  # the filter process of filtered_stderr
    forward(sys.stdin.buffer, sys.stdout.buffer,
            StartupFilter(int(sys.argv[1]), bool(int(sys.argv[2]))))
