"""Model-zoo tarballs, checked before anything is unpacked.

A tarball is a foreign file: it may be cut short, damaged, or hostile (members that are
links or devices, names that climb out of the folder they are unpacked into, a member that
declares a gigabyte and compresses to a few megabytes). Every check here reads the headers
(and, for :func:`verify_archive`, the data) without writing anything, and every failure is
one :class:`ArchiveError` line naming the archive and the member.

Only the checkpoint members (``model.ckpt[-N].{index,data-*}`` and a ``checkpoint`` state
file) are ever unpacked; the others (the zoo's ``frozen_inference_graph.pb``) are read past.
"""

from __future__ import annotations

import re
import shutil
import tarfile
import zlib
from pathlib import Path

from deeplab.data.progress import size_text

CHECKPOINT_MEMBER = re.compile(r"(^|/)(model\.ckpt[^/]*|checkpoint)$")
# The zoo's largest checkpoint (Xception-71 with its Momentum slots) is well under 2 GB.
MAX_UNPACKED_BYTES = 8 * 2**30
# Checkpoint floats barely compress (about 1.1x); a member declaring 50 times the tarball's
# size is not a checkpoint but a decompression bomb.
MAX_COMPRESSION_RATIO = 50
# Room left on the disk after unpacking, for everything else that runs.
FREE_SPACE_MARGIN = 256 * 2**20
_READ_ERRORS = (tarfile.TarError, EOFError, zlib.error, OSError)


class ArchiveError(ValueError):
    """A tarball that is damaged, incomplete or unsafe to unpack (one line, naming it).

    Attributes:
        reason: what is wrong, without the file's name or advice (for a caller that names
            the file otherwise: a download names its URL).
    """

    def __init__(self, message: str, reason: str):
        super().__init__(message)
        self.reason = reason


def _kind(member: tarfile.TarInfo) -> str:
    if member.issym():
        return f"a symbolic link (to {member.linkname})"
    if member.islnk():
        return f"a hard link (to {member.linkname})"
    if member.ischr() or member.isblk():
        return "a device"
    if member.isfifo():
        return "a FIFO"
    if member.isdir():
        return "a folder"
    return "not a regular file"


def _unsafe_name(name: str) -> bool:
    parts = name.replace("\\", "/").split("/")
    return name.startswith(("/", "\\")) or ".." in parts or "\x00" in name or \
        re.match(r"^[A-Za-z]:", name) is not None


def _read_error(path: Path, error: BaseException) -> ArchiveError:
    if isinstance(error, (tarfile.ReadError, EOFError, zlib.error)):
        reason = "not a complete gzip/tar archive"
    else:
        reason = " ".join(str(error).split())[:200]
    return ArchiveError(f"{path} cannot be read ({reason}): it is damaged or incomplete; "
                        "download it again", reason)


def _check_member(path: Path, member: tarfile.TarInfo) -> bool:
    """Whether ``member`` is a checkpoint member to unpack; ArchiveError if it is one that
    must not be unpacked (a link, a device, a name outside the folder)."""
    if member.isdir() or not CHECKPOINT_MEMBER.search(member.name):
        return False  # folders are made as the files inside them are unpacked
    if _unsafe_name(member.name):
        reason = f"member {member.name!r} would be unpacked outside its folder"
        raise ArchiveError(f"{path}: {reason}; refused (the archive is not the model zoo's)",
                           reason)
    if not member.isreg():
        reason = f"member {member.name} is {_kind(member)}, not a file"
        raise ArchiveError(f"{path}: {reason}; a model zoo archive holds regular files only "
                           "(refused, nothing was unpacked)", reason)
    return True


def _compressed_budget(path: Path) -> int | None:
    """What a compressed archive's members may declare at most (None for a plain tar,
    whose members cannot be larger than the file)."""
    with open(path, "rb") as f:
        compressed = f.read(2) == b"\x1f\x8b"
    return MAX_COMPRESSION_RATIO * max(path.stat().st_size, 1) if compressed else None


def _check_sizes(path: Path, members: list[tarfile.TarInfo], budget: int | None,
                 final: bool) -> None:
    declared = sum(m.size for m in members)
    if declared > MAX_UNPACKED_BYTES:
        reason = (f"its checkpoint members declare {size_text(declared)}, more than any model "
                  f"zoo checkpoint ({size_text(MAX_UNPACKED_BYTES)} at most)")
        raise ArchiveError(f"{path}: {reason}; refused before unpacking", reason)
    if budget is not None and declared > budget:
        biggest = max(members, key=lambda m: m.size)
        reason = (f"member {biggest.name} declares {size_text(biggest.size)} in an archive of "
                  f"{size_text(path.stat().st_size)} (over {MAX_COMPRESSION_RATIO} times its "
                  "size: not checkpoint weights, which barely compress)")
        raise ArchiveError(f"{path}: {reason}; refused before unpacking", reason)
    names = [m.name for m in members]
    if final and (not any(n.endswith(".index") for n in names)
                  or not any(".data-" in n for n in names)):
        reason = "no TF checkpoint inside (no model.ckpt*.index and .data-* members)"
        raise ArchiveError(f"{path} holds no TF checkpoint (no model.ckpt*.index and .data-* "
                           "members): it is not a model zoo archive", reason)


def _scan(path: Path, read_data: bool) -> list[tarfile.TarInfo]:
    """One pass over a tarball: each member's header checked before its data is read past
    (or, with ``read_data``, read, and the gzip stream on to its CRC)."""
    wanted: list[tarfile.TarInfo] = []
    budget = _compressed_budget(path)
    try:
        with tarfile.open(path) as packed:
            for member in packed:
                if _check_member(path, member):
                    wanted.append(member)
                    _check_sizes(path, wanted, budget, final=False)
                if read_data and member.isreg():
                    source = packed.extractfile(member)
                    while source.read(2**20):
                        pass
            # The tar ends before the gzip stream does: read on to its CRC.
            while read_data and packed.fileobj.read(2**20):
                pass
    except _READ_ERRORS as error:
        raise _read_error(path, error) from None
    _check_sizes(path, wanted, budget, final=True)
    return wanted


def checkpoint_members(path: str | Path) -> list[tarfile.TarInfo]:
    """The checkpoint members of a tarball, after checking their headers (nothing is
    unpacked).

    Checked: every checkpoint member is a regular file (a link or a device is refused; a
    link is never followed), its name stays inside the folder it is unpacked into, the
    archive holds at least one ``.index`` and a ``.data``, and the sizes the members declare
    are at most :data:`MAX_UNPACKED_BYTES` and, for a compressed archive,
    :data:`MAX_COMPRESSION_RATIO` times the archive's own size.

    Args:
        path: a ``.tar.gz``, ``.tgz`` or ``.tar`` file.

    Raises:
        ArchiveError: naming the archive and the member, or what is missing.
    """
    return _scan(Path(path), read_data=False)


def unpack_checkpoint(path: str | Path, folder: str | Path) -> list[str]:
    """Unpacks a tarball's checkpoint members into ``folder`` after
    :func:`checkpoint_members` and a check that the disk holds what they declare.

    Returns:
        The unpacked members' names.

    Raises:
        ArchiveError: as :func:`checkpoint_members`, or too little free space (naming the
            folder, what is needed and what is free).
    """
    path, folder = Path(path), Path(folder)
    members = checkpoint_members(path)
    declared = sum(m.size for m in members)
    free = shutil.disk_usage(folder).free
    if declared + FREE_SPACE_MARGIN > free:
        reason = (f"unpacking its checkpoint needs {size_text(declared)} in {folder.parent}, "
                  f"which has {size_text(free)} free")
        raise ArchiveError(f"{path}: {reason}: free some space or set TMPDIR to a folder on a "
                           "larger disk", reason)
    try:
        with tarfile.open(path) as archive:
            archive.extractall(folder, members=members, filter="data")
    except _READ_ERRORS as error:
        raise _read_error(path, error) from None
    return [m.name for m in members]


def verify_archive(path: str | Path) -> list[tarfile.TarInfo]:
    """Reads every byte of a tarball, writing nothing: the member checks of
    :func:`checkpoint_members` (each header before its data is read), each member's length,
    and the gzip CRC at the end. What a download must pass before it enters the cache.

    Returns:
        The checkpoint members.

    Raises:
        ArchiveError: not gzip / tar, cut short, damaged, or unsafe.
    """
    return _scan(Path(path), read_data=True)
