"""HTTP(S) downloads that behave on slow and flaky networks (standard library only, no
TensorFlow).

:func:`download` writes into a ``.part`` file that its caller renames when the file is
complete and checked; an interrupted transfer resumes with an HTTP ``Range`` request (in
the same call, or in a later one that finds the ``.part``). Each try has a timeout (no byte
for ``timeout`` seconds ends it); connection errors, resets, timeouts and HTTP 5xx / 429 /
408 are retried with an exponential backoff; other HTTP errors (404) fail at once.
Redirects are followed, and the standard proxy variables (``https_proxy``, ``http_proxy``,
``no_proxy``) are read on every call (urllib's ``ProxyHandler``). The length the server
announces (``Content-Length``, or the total of a ``Content-Range``) is checked. Progress
(size, speed, ETA) is rewritten in place on a terminal, else printed as a line every few
seconds.

Settings come from :class:`DownloadSettings`; ``DEEPLAB_DOWNLOAD_TIMEOUT``,
``DEEPLAB_DOWNLOAD_RETRIES`` and ``DEEPLAB_DOWNLOAD_BACKOFF`` change them for a slow link
(and make tests fast).
"""

from __future__ import annotations

import dataclasses
import http.client
import os
import re
import socket
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path

from deeplab.data.progress import Progress, size_text

RETRY_STATUS = frozenset({408, 429, 500, 502, 503, 504})
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")
_CHUNK = 256 * 1024


class DownloadError(OSError):
    """A download that failed for good: one line naming the URL and why.

    Attributes:
        http_status: the server's HTTP status (404...), None for a network failure.
    """

    def __init__(self, message: str, http_status: int | None = None):
        super().__init__(message)
        self.http_status = http_status

    def __str__(self) -> str:
        return self.args[0]


class _Retry(Exception):
    """A failed try worth another (a reset, a timeout, a 5xx)."""


@dataclasses.dataclass(frozen=True)
class DownloadSettings:
    """How a download waits and retries.

    Attributes:
        timeout: seconds without a byte (or without a connection) before a try ends.
        retries: further tries after a failed one (a try that received bytes resets the
            count: a long download on a link that drops now and then still finishes).
        backoff: seconds before the first retry; doubled for each further one.
        progress_interval: seconds between progress lines when the output is not a
            terminal (a terminal's line is rewritten a few times a second).
    """

    timeout: float = 30.0
    retries: int = 4
    backoff: float = 1.0
    progress_interval: float = 5.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> DownloadSettings:
        """The defaults, changed by ``DEEPLAB_DOWNLOAD_TIMEOUT`` (seconds),
        ``DEEPLAB_DOWNLOAD_RETRIES`` and ``DEEPLAB_DOWNLOAD_BACKOFF`` (seconds).

        Raises:
            ValueError: naming a variable whose value is not a number >= 0.
        """
        environ = os.environ if environ is None else environ
        values = {}
        for field, name, kind in (("timeout", "DEEPLAB_DOWNLOAD_TIMEOUT", float),
                                  ("retries", "DEEPLAB_DOWNLOAD_RETRIES", int),
                                  ("backoff", "DEEPLAB_DOWNLOAD_BACKOFF", float)):
            text = environ.get(name)
            if text is None or text == "":
                continue
            try:
                values[field] = kind(text)
            except ValueError:
                values[field] = -1
            if values[field] < 0 or (field == "timeout" and values[field] == 0):
                raise ValueError(f"{name}={text!r} is not a valid {field} (a number "
                                 f"{'> 0' if field == 'timeout' else '>= 0'})")
        return cls(**values)


def _user_agent() -> str:
    from deeplab import __version__

    return f"deeplab-keras/{__version__} (+python urllib)"


def _reason(error: BaseException, timeout: float) -> str:
    """A network error in a few words (``timed out (no byte for 30 s)``,
    ``Connection refused``)."""
    if isinstance(error, urllib.error.URLError) and not isinstance(error, urllib.error.HTTPError):
        if not isinstance(error.reason, BaseException):
            return str(error.reason)
        error = error.reason
    if isinstance(error, (TimeoutError, socket.timeout)):
        return f"timed out (nothing received for {timeout:g} s)"
    if isinstance(error, http.client.IncompleteRead):
        return "the connection closed early"
    text = getattr(error, "strerror", None) or str(error) or type(error).__name__
    return " ".join(str(text).split())[:200]


def _no_network(error: BaseException) -> bool:
    """A host name that does not resolve: no network (or a typo), not worth retrying."""
    reason = getattr(error, "reason", error)
    return isinstance(reason, socket.gaierror)


class _Display:
    """Progress for one download: a bar rewritten in place on a terminal, else a line every
    ``interval`` seconds; notes (retries, the end) on lines of their own."""

    def __init__(self, url: str, stream, interval: float):
        self.url = url
        self.stream = stream
        self.terminal = bool(getattr(stream, "isatty", lambda: False)())
        self.interval = min(interval, 0.25) if self.terminal else interval
        self.progress: Progress | None = None
        self._bar_shown = False  # a terminal's bar is on the current line

    def _bar(self, line: str) -> None:
        if self.terminal:
            self.stream.write("\r" + line + "\x1b[K")
            self._bar_shown = True
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def note(self, line: str) -> None:
        """A line of its own (below the bar, which the next update draws again)."""
        self.stream.write(("\n" if self._bar_shown else "") + line + "\n")
        self._bar_shown = False
        self.stream.flush()

    def start(self, total: int | None, done: int) -> None:
        self.progress = Progress(total or 0, f"downloading {self.url}", self.interval,
                                 self._bar, unit="bytes", done=done)
        self._started = self._last = time.monotonic()
        self._resumed_at = done
        size = size_text(total) if total else "size not announced"
        self.note(f"resuming {self.url} at {size_text(done)} ({size})" if done
                  else f"downloading {self.url} ({size})")

    def update(self, count: int) -> None:
        if self.progress.total:
            self.progress.update(count)
            return
        # No Content-Length: the size and speed so far, without a percentage or an ETA.
        self.progress.done += count
        now = time.monotonic()
        if now - self._last >= self.interval:
            self._last = now
            received = self.progress.done - self._resumed_at
            self._bar(f"downloading {self.url}: {size_text(self.progress.done)} "
                      f"({size_text(received / max(now - self._started, 1e-9))}/s, size not "
                      "announced)")

    def finish(self, elapsed: float, size: int) -> None:
        speed = size_text(size / elapsed) if elapsed > 0 else "?"
        self.note(f"downloaded {self.url}: {size_text(size)} in {elapsed:.1f} s ({speed}/s)")


def download(url: str, part: str | Path, settings: DownloadSettings | None = None,
             stream=None) -> int:
    """Downloads ``url`` into ``part``, resuming from what ``part`` already holds.

    Args:
        url: an ``http://``, ``https://`` or ``file://`` URL.
        part: the file to write (a ``.part`` name: the caller renames it once it is
            complete and checked).
        settings: timeouts and retries; default :meth:`DownloadSettings.from_env`.
        stream: where progress goes (default ``sys.stderr``).

    Returns:
        The file's size, equal to what the server announced when it announced one.

    Raises:
        DownloadError: HTTP 4xx, or the last retry failed (naming the URL, the reason and
            the number of tries); ``part`` keeps what was received, for the next call to
            resume from.
    """
    settings = settings or DownloadSettings.from_env()
    part = Path(part)
    part.parent.mkdir(parents=True, exist_ok=True)
    display = _Display(url, stream or sys.stderr, settings.progress_interval)
    failures = 0
    started = time.monotonic()
    while True:
        before = part.stat().st_size if part.exists() else 0
        try:
            size = _try(url, part, settings, display)
            display.finish(time.monotonic() - started, size)
            return size
        except _Retry as error:
            after = part.stat().st_size if part.exists() else 0
            failures = 1 if after > before else failures + 1
            if failures > settings.retries:
                tries = "1 try" if settings.retries == 0 else f"{settings.retries + 1} tries"
                raise DownloadError(f"could not download {url}: {error} ({tries})") from None
            wait = settings.backoff * 2 ** (failures - 1)
            display.note(f"{url}: {error}; retrying in {wait:g} s")
            time.sleep(wait)


def _open(url: str, offset: int, timeout: float):
    headers = {"User-Agent": _user_agent()}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    # A new opener each time: its ProxyHandler reads the proxy variables as they are now.
    opener = urllib.request.build_opener()
    return opener.open(urllib.request.Request(url, headers=headers), timeout=timeout)


def _try(url: str, part: Path, settings: DownloadSettings, display: _Display) -> int:
    """One request: appends to ``part`` from its size; returns the complete size."""
    offset = part.stat().st_size if part.exists() else 0
    try:
        response = _open(url, offset, settings.timeout)
    except urllib.error.HTTPError as error:
        error.close()
        if error.code == 416 and offset:
            if error.headers.get("Content-Range", "").strip() == f"bytes */{offset}":
                return offset  # the part was complete already (a run stopped before its check)
            part.unlink()  # the part is not a prefix of this file
            raise _Retry("the server could not resume the partial file; starting again") \
                from None
        if error.code in RETRY_STATUS:
            raise _Retry(f"HTTP {error.code} {error.reason}") from None
        raise DownloadError(f"could not download {url}: HTTP {error.code} {error.reason}",
                            error.code) from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as error:
        if _no_network(error):
            raise DownloadError(f"could not download {url}: "
                                f"{_reason(error, settings.timeout)} (no network?)") from None
        raise _Retry(_reason(error, settings.timeout)) from None
    with response:
        try:
            total = _expected_size(response, offset)
        except _Retry:
            part.unlink()
            raise
        if offset and response.status != 206:
            offset = 0  # the server sent the whole file again
        display.start(total, offset)
        received = offset
        with open(part, "ab" if offset else "wb") as f:
            while True:
                try:
                    chunk = response.read(_CHUNK)
                except (OSError, http.client.HTTPException) as error:
                    of_total = f" of {size_text(total)}" if total else ""
                    raise _Retry(f"connection lost after {size_text(received)}{of_total} "
                                 f"({_reason(error, settings.timeout)})") from None
                if not chunk:
                    break
                try:
                    f.write(chunk)
                except OSError as error:
                    raise DownloadError(f"could not write {part}: "
                                        f"{error.strerror or error}") from None
                received += len(chunk)
                display.update(len(chunk))
    size = part.stat().st_size
    if total is not None and size < total:
        raise _Retry(f"connection closed after {size_text(size)} of {size_text(total)}")
    if total is not None and size > total:
        part.unlink()
        raise DownloadError(f"could not download {url}: received {size} bytes, the server "
                            f"announced {total}")
    return size


def _expected_size(response, offset: int) -> int | None:
    """The whole file's size from the response's headers, None when not announced."""
    if response.status == 206:
        match = _CONTENT_RANGE.fullmatch(response.headers.get("Content-Range", "").strip())
        if match is None or int(match.group(1)) != offset:
            raise _Retry("the server resumed at another offset; starting again")
        return None if match.group(3) == "*" else int(match.group(3))
    length = response.headers.get("Content-Length")
    return int(length) if length and length.isdigit() else None
