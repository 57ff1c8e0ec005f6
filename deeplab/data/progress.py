"""Progress lines with counts (or sizes), rate and ETA for long work: conversions,
evaluation, downloads."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

logger = logging.getLogger("deeplab.data")


def format_duration(seconds: float) -> str:
    """Formats seconds as H:MM:SS."""
    seconds = int(round(max(seconds, 0)))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def size_text(size: float) -> str:
    """A byte count for people: ``1.5 GB``, ``3.2 MB``, ``12.0 KB``, ``512 B``."""
    for unit, scale in (("GB", 2**30), ("MB", 2**20), ("KB", 2**10)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{int(size)} B"


class Progress:
    """Reports ``done/total``, rate and ETA at most every `interval` seconds, and at the end.

    Lines rather than a carriage-return bar: converters run under nohup and CI logs too.
    """

    def __init__(self, total: int, description: str, interval: float = 5.0,
                 log: Callable[[str], None] | None = None, unit: str = "examples",
                 done: int = 0) -> None:
        """Args:
            total: items (or bytes) in all.
            description: the start of each line.
            interval: minimum seconds between two lines.
            log: where lines go (default: the ``deeplab.data`` logger).
            unit: what is counted; ``"bytes"`` shows sizes (MB) and MB/s.
            done: already done before this run (a resumed download): counted in the
                total, not in the rate.
        """
        self.total = total
        self.description = description
        self.interval = interval
        self.unit = unit
        self.done = done
        self._done_before = done
        self._log = log or logger.info
        self._start = time.monotonic()
        self._last = self._start

    def message(self) -> str:
        """The current progress line."""
        elapsed = time.monotonic() - self._start
        rate = (self.done - self._done_before) / elapsed if elapsed > 0 else 0.0
        eta = (self.total - self.done) / rate if rate > 0 else float("nan")
        percent = 100.0 * self.done / self.total if self.total else 100.0
        eta_text = format_duration(eta) if eta == eta else "?"
        if self.unit == "bytes":
            counts = f"{size_text(self.done)} of {size_text(self.total)}"
            speed = f"{size_text(rate)}/s"
        else:
            counts, speed = f"{self.done}/{self.total} {self.unit}", f"{rate:.1f}/s"
        return (f"{self.description}: {counts} ({percent:.1f}%), {speed}, elapsed "
                f"{format_duration(elapsed)}, ETA {eta_text}")

    def update(self, n: int = 1) -> None:
        """Records `n` more finished items."""
        self.done += n
        now = time.monotonic()
        if now - self._last >= self.interval and self.done < self.total:
            self._last = now
            self._log(self.message())

    def close(self) -> None:
        """Logs the final line."""
        self._log(self.message())
