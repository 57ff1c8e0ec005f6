"""Atomic file outputs: a crash never leaves a half-written file or folder.

Every writer in the project goes through these: the data is written under a temporary name
beside the target and renamed over it only when complete (a rename is atomic on one file
system). The shard writer (``deeplab.data.writer``) commits a whole split the same way.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path


def _umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[str]:
    """Yields a temporary path beside ``path``; renames it over ``path`` if the block succeeds.

    The temporary name keeps the extension (or ``suffix``, e.g. ``.weights.h5`` for Keras,
    which checks the whole ending), so writers that pick the format from it (matplotlib,
    ``np.save``, ``cv2.imwrite``) write the right format.

    Example:
        >>> with atomic_path("erf.npy") as tmp:
        ...     np.save(tmp, array)
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    suffix = os.path.splitext(path)[1] if suffix is None else suffix
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=suffix, dir=directory)
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600; give the usual permissions.
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


@contextlib.contextmanager
def atomic_directory(path: str | os.PathLike) -> Iterator[Path]:
    """Yields a temporary folder beside ``path``; renames it to ``path`` if the block
    succeeds (``path`` must not exist: a TF Serving version, say)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = Path(tempfile.mkdtemp(prefix=f".tmp-{path.name}-", dir=path.parent))
    try:
        yield temporary
        os.chmod(temporary, 0o777 & ~_umask())
        os.replace(temporary, path)
    finally:
        shutil.rmtree(temporary, ignore_errors=True)


def write_text(path: str | os.PathLike, text: str) -> None:
    """Writes ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        f.write(text)


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Writes ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(data)


def unwritable_reason(folder: str | os.PathLike) -> str | None:
    """Why files cannot be written into ``folder`` (made if needed), or None when they can:
    checked up front, so a binary fails in one line before any work (a path that is a file,
    a read-only folder, a full disk)."""
    try:
        os.makedirs(folder, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-test-"):
            pass
    except OSError as error:
        return error.strerror or str(error)
    return None
