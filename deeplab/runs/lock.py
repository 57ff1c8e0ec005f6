"""One trainer per run folder: an exclusive lock on ``<train_logdir>/.lock``.

Two trainers writing into one ``--train_logdir`` interleave their checkpoints and the
``checkpoint`` index lists a mix of both. The lock is an OS file lock (``flock``), so the
kernel drops it when its holder dies, however it dies: a dead holder's lock is taken over
(with a message naming it), never waited for. The file also names the holder (PID, host,
start time) for the error the second trainer prints.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from collections.abc import Callable
from pathlib import Path

LOCK_NAME = ".lock"


class RunFolderBusy(RuntimeError):
    """Another live process holds the run folder."""


class RunLock:
    """An exclusive, stale-safe lock on a run folder (local file systems), or on anything
    else a folder holds (the model-zoo cache locks each download with ``wait``).

    Args:
        directory: the folder (created if missing).
        name: the lock file's name in it (one folder may hold several locks).
        wait: given, a busy lock is waited for instead of refused: ``wait(holder)`` is
            called once first (with the holder's PID, host and start), to say so.

    Example:
        >>> with RunLock("exp/train") as lock:
        ...     print(lock.took_over)   # None, or a line about a dead holder
    """

    def __init__(self, directory: str | os.PathLike, name: str = LOCK_NAME,
                 wait: Callable[[dict], None] | None = None):
        self.path = Path(directory) / name
        self._wait = wait
        self._file = None
        self.took_over: str | None = None

    def acquire(self) -> RunLock:
        """Takes the lock (waiting for it when the lock was made with ``wait``).

        Raises:
            RunFolderBusy: naming the holder's PID and host.
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+", encoding="utf-8")  # held until release()
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(handle)
            if self._wait is not None:
                self._wait(holder)
                fcntl.flock(handle, fcntl.LOCK_EX)
                return self._hold(handle)
            handle.close()
            raise RunFolderBusy(
                f"{self.path.parent} is in use by another trainer (PID {holder.get('pid', '?')} "
                f"on {holder.get('host', '?')}, since {holder.get('started', '?')}): wait for "
                "it to finish, stop it, or use another --train_logdir") from None
        return self._hold(handle)

    def _hold(self, handle) -> RunLock:
        previous = _read_holder(handle)
        if previous:
            self.took_over = (f"took over the lock of {self.path.parent} from PID "
                              f"{previous.get('pid', '?')} on {previous.get('host', '?')}, which "
                              "is no longer running (it did not release it)")
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                 "started": time.strftime("%Y-%m-%d %H:%M:%S")}) + "\n")
        handle.flush()
        self._file = handle
        return self

    def release(self) -> None:
        """Empties the holder record and drops the lock (a clean exit leaves no holder)."""
        if self._file is None:
            return
        self._file.seek(0)
        self._file.truncate()
        self._file.flush()
        fcntl.flock(self._file, fcntl.LOCK_UN)
        self._file.close()
        self._file = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc_info) -> None:
        self.release()


def _read_holder(handle) -> dict:
    handle.seek(0)
    text = handle.read().strip()
    try:
        return json.loads(text) if text else {}
    except json.JSONDecodeError:
        return {"pid": "unknown", "host": "unknown"}
