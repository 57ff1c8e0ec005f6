"""The model zoo on this machine: each tarball downloaded once, checked, imported once.

``$DEEPLAB_HOME/zoo/`` (``DEEPLAB_HOME`` defaults to ``$XDG_CACHE_HOME/deeplab``, else
``~/.cache/deeplab``) holds, per preset:

- ``<tarball>.tar.gz``: the download, only once complete and checked (gzip and tar
  readable to the end, the members safe, a checkpoint inside). Downloads are written to
  ``<tarball>.tar.gz.part`` (resumed by the next call when interrupted) and renamed.
- ``<tarball>.tar.gz.sha256``: its SHA-256 in ``sha256sum`` form, recorded on first use and
  checked on every later one; a file that no longer matches is named, removed and
  downloaded again.
- ``<name>.weights.h5`` + ``<name>.config.json``: the imported model (its class names and
  preset inside), and ``<name>.import.json``: the SHA-256 of the tarball it came from and
  of the weights file, written last, so a second call loads the weights in seconds and a
  changed or damaged file is imported again.
- ``.<tarball>.lock``: held while a process fetches or imports, so two processes asking for
  the same preset at once do not both download: one does, the other waits and reuses it.

Offline (``DEEPLAB_OFFLINE=1``, or a network that cannot be reached), a cached preset works
as ever; a missing one is one line naming its URL and the exact path to put the file by
hand. The zoo's base URL is ``DEEPLAB_ZOO_URL`` (a mirror; the tests' local server).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
from pathlib import Path

from deeplab.runs.atomic import write_text
from deeplab.runs.lock import RunLock
from deeplab.weights.archive import ArchiveError, verify_archive
from deeplab.weights.download import DownloadError, DownloadSettings, download
from deeplab.weights.presets import Preset, get_preset

ZOO_URL = "https://download.tensorflow.org/models/"
PRESET_SCHEME = "preset:"
_TRUE = ("1", "true", "yes", "on")
_SHA256 = re.compile(r"(?:sha256:)?([0-9a-fA-F]{64})")


class OfflineError(OSError):
    """A preset that is not in the cache while the network is off or unreachable."""


def deeplab_home() -> Path:
    """``$DEEPLAB_HOME``, else ``$XDG_CACHE_HOME/deeplab``, else ``~/.cache/deeplab``."""
    if os.environ.get("DEEPLAB_HOME"):
        return Path(os.environ["DEEPLAB_HOME"]).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache).expanduser() / "deeplab"


def zoo_folder() -> Path:
    """Where the zoo's tarballs and imported models are kept."""
    return deeplab_home() / "zoo"


def is_offline() -> bool:
    """``DEEPLAB_OFFLINE`` is set to 1 / true / yes."""
    return os.environ.get("DEEPLAB_OFFLINE", "").strip().lower() in _TRUE


def is_url(text: str) -> bool:
    """Whether ``text`` is an ``http(s)://`` or ``file://`` URL."""
    return re.match(r"^(https?|file)://", str(text)) is not None


def preset_url(preset: Preset) -> str:
    """The tarball's URL: ``$DEEPLAB_ZOO_URL`` (default the zoo's
    ``https://download.tensorflow.org/models/``) + ``<tarball>.tar.gz``."""
    base = os.environ.get("DEEPLAB_ZOO_URL") or ZOO_URL
    return base.rstrip("/") + "/" + preset.tarball + ".tar.gz"


def parse_sha256(file_hash: str | None) -> str | None:
    """A pinned hash (``<64 hex>`` or ``sha256:<64 hex>``) in lower case; ValueError
    naming the value otherwise."""
    if file_hash is None:
        return None
    match = _SHA256.fullmatch(file_hash.strip())
    if match is None:
        raise ValueError(f"file_hash / --sha256 {file_hash!r} is not a SHA-256 (64 hex digits, "
                         "optionally prefixed with 'sha256:')")
    return match.group(1).lower()


def sha256_of(path: str | Path, chunk: int = 4 * 2**20) -> str:
    """The SHA-256 of a file, in hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


class CacheEntry:
    """The files of one preset in the cache (see the module's docstring).

    Args:
        preset: the zoo checkpoint.
        folder: the cache folder; default :func:`zoo_folder`.
    """

    def __init__(self, preset: Preset, folder: Path | None = None):
        self.preset = preset
        self.folder = Path(folder) if folder is not None else zoo_folder()
        self.archive = self.folder / f"{preset.tarball}.tar.gz"
        self.part = self.folder / f"{self.archive.name}.part"
        self.record = self.folder / f"{self.archive.name}.sha256"
        self.weights = self.folder / f"{preset.name}.weights.h5"
        self.config = self.folder / f"{preset.name}.config.json"
        self.stamp = self.folder / f"{preset.name}.import.json"

    def lock(self, log) -> RunLock:
        """The lock of this entry: a second process waits for the first (and says so)."""
        def waiting(holder: dict) -> None:
            log(f"waiting for PID {holder.get('pid', '?')} on {holder.get('host', '?')}, which "
                f"is fetching {self.preset.name} into {self.folder}")

        return RunLock(self.folder, f".{self.preset.tarball}.lock", wait=waiting)

    def recorded_sha256(self) -> str | None:
        """The SHA-256 recorded for the tarball, None without a record."""
        if not self.record.is_file():
            return None
        match = re.match(r"([0-9a-f]{64})\b", self.record.read_text().strip())
        return match.group(1) if match else None

    def by_hand(self, url: str) -> str:
        """How to put the tarball in place without this machine's network."""
        return (f"download {url} on a machine with network access and put it at "
                f"{self.archive}")


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def fetch_archive(preset: Preset, url: str | None = None, file_hash: str | None = None,
                  settings: DownloadSettings | None = None, stream=None,
                  folder: Path | None = None) -> Path:
    """The preset's tarball in the cache: checked against its recorded SHA-256 when there,
    else downloaded (with progress, resumed, retried), checked and recorded.

    Args:
        preset: the zoo checkpoint.
        url: where to download it from; default :func:`preset_url`.
        file_hash: a SHA-256 the file must have (``sha256:<hex>`` or ``<hex>``).
        settings: timeouts and retries; default from the environment.
        stream: where progress and notes go (default ``sys.stderr``).
        folder: the cache folder; default :func:`zoo_folder`.

    Returns:
        The tarball's path in the cache.

    Raises:
        DownloadError: the download failed (the URL, why, and where to put it by hand).
        OfflineError: offline and not cached.
        ArchiveError: the download is not a complete, safe tarball holding a checkpoint
            (nothing is left in the cache).
        ValueError: the file's SHA-256 is not the pinned one.
    """
    entry = CacheEntry(preset, folder)
    log = _log_to(stream)
    with entry.lock(log):
        return _fetch(entry, url or preset_url(preset), parse_sha256(file_hash), settings,
                      stream, log)


def _log_to(stream):
    if stream is None:
        return _stderr
    return lambda line: (stream.write(line + "\n"), stream.flush())


def _cached_problem(entry: CacheEntry, pinned: str | None, log) -> str | None:
    """Why the cached tarball cannot be used (it is then removed), None when it can.

    Raises:
        ValueError: it is intact but not the pinned file.
    """
    recorded = entry.recorded_sha256()
    if recorded is None:  # put there by hand (or the record was lost): check it all once
        try:
            verify_archive(entry.archive)
        except ArchiveError as error:
            return f"cached {entry.archive} cannot be used ({error.reason})"
        recorded = sha256_of(entry.archive)
        write_text(entry.record, f"{recorded}  {entry.archive.name}\n")
        log(f"checked {entry.archive} and recorded its SHA-256 {recorded} (first use)")
    else:
        actual = sha256_of(entry.archive)
        if actual != recorded:
            return (f"cached {entry.archive} is damaged: its SHA-256 is {actual}, not "
                    f"{recorded} as recorded when it was downloaded")
    if pinned is not None and recorded != pinned:
        raise ValueError(f"cached {entry.archive} has SHA-256 {recorded}, not the pinned "
                         f"{pinned}: check the hash, or delete the file to download it again")
    return None


def _fetch(entry: CacheEntry, url: str, pinned: str | None, settings, stream, log) -> Path:
    if entry.archive.is_file():
        problem = _cached_problem(entry, pinned, log)
        if problem is None:
            return entry.archive
        for path in (entry.archive, entry.record):
            path.unlink(missing_ok=True)
        log(f"{problem}; removed it, fetching it again")
    if is_offline():
        raise OfflineError(f"DEEPLAB_OFFLINE is set and {entry.preset.name} is not in the cache: "
                           f"{entry.by_hand(url)} (or unset DEEPLAB_OFFLINE)")
    try:
        download(url, entry.part, settings, stream)
    except DownloadError as error:
        if error.http_status is not None:
            raise
        raise DownloadError(f"{error}; without network, {entry.by_hand(url)}") from None
    try:
        verify_archive(entry.part)
    except ArchiveError as error:
        entry.part.unlink(missing_ok=True)
        raise ArchiveError(f"the file downloaded from {url} is not a usable model zoo tarball "
                           f"({error.reason}); nothing was kept in the cache",
                           error.reason) from None
    digest = sha256_of(entry.part)
    if pinned is not None and digest != pinned:
        entry.part.unlink()
        raise ValueError(f"the file downloaded from {url} has SHA-256 {digest}, not the pinned "
                         f"{pinned}; it was not kept")
    os.replace(entry.part, entry.archive)
    write_text(entry.record, f"{digest}  {entry.archive.name}\n")
    log(f"cached {entry.archive} (SHA-256 {digest})")
    return entry.archive


def _import_is_current(entry: CacheEntry, tarball_sha256: str | None) -> bool:
    """Whether the imported model was made from this tarball and is intact."""
    try:
        stamp = json.loads(entry.stamp.read_text())
    except (OSError, ValueError):
        return False
    if tarball_sha256 is not None and stamp.get("tarball_sha256") != tarball_sha256:
        return False
    return entry.weights.is_file() and entry.config.is_file() and \
        sha256_of(entry.weights) == stamp.get("weights_sha256")


def cached_model(preset: Preset, url: str | None = None, file_hash: str | None = None,
                 settings: DownloadSettings | None = None, stream=None,
                 folder: Path | None = None) -> Path:
    """The preset's imported ``.weights.h5`` in the cache (its ``.config.json`` beside):
    the tarball fetched by :func:`fetch_archive` and imported the first time, loaded from
    the cache after that (the tarball's and the weights' SHA-256 checked each time; with
    the tarball removed by hand, the intact import alone is used).

    Args: as :func:`fetch_archive`.
    """
    entry = CacheEntry(preset, folder)
    log = _log_to(stream)
    pinned = parse_sha256(file_hash)
    with entry.lock(log):
        if not entry.archive.is_file() and pinned is None and _import_is_current(entry, None):
            return entry.weights
        archive = _fetch(entry, url or preset_url(preset), pinned, settings, stream, log)
        digest = entry.recorded_sha256()
        if _import_is_current(entry, digest):
            return entry.weights
        entry.stamp.unlink(missing_ok=True)
        _import_into(entry, archive, log)
        write_text(entry.stamp, json.dumps({
            "preset": preset.name, "tarball": archive.name, "tarball_sha256": digest,
            "weights_sha256": sha256_of(entry.weights)}, indent=2) + "\n")
        return entry.weights


def _import_into(entry: CacheEntry, archive: Path, log) -> None:
    from deeplab.runs.store import save_model
    from deeplab.weights.zoo_import import import_zoo_checkpoint, preset_labels

    preset = entry.preset
    log(f"importing {archive.name} (once; later calls load {entry.weights.name})")
    imported = import_zoo_checkpoint(archive, {}, preset)
    save_model(imported.model, entry.weights, preset_labels(preset, imported.model),
               preset.name)


def resolve_model_path(value: str | None, stream=None) -> str | None:
    """A binary's model argument with ``preset:NAME`` turned into the imported model in
    the cache (downloaded and imported the first time); any other value as it is.

    ``deeplab-predict``, ``deeplab-eval``, ``deeplab-vis``, ``deeplab-export`` and
    ``deeplab-convert-tflite`` call this on ``--checkpoint_path`` / ``--checkpoint_dir``.
    """
    if value is None or not str(value).startswith(PRESET_SCHEME):
        return value
    preset = get_preset(str(value)[len(PRESET_SCHEME):])
    return str(cached_model(preset, stream=stream))
