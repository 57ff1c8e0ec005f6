"""Progress lines with counts, rate and ETA for long conversions."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

logger = logging.getLogger("deeplab.data")


def format_duration(seconds: float) -> str:
    """Formats seconds as H:MM:SS."""
    seconds = int(round(max(seconds, 0)))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


class Progress:
    """Reports ``done/total``, rate and ETA at most every `interval` seconds, and at the end.

    Lines rather than a carriage-return bar: converters run under nohup and CI logs too.
    """

    def __init__(self, total: int, description: str, interval: float = 5.0,
                 log: Callable[[str], None] | None = None, unit: str = "examples") -> None:
        self.total = total
        self.description = description
        self.interval = interval
        self.unit = unit
        self.done = 0
        self._log = log or logger.info
        self._start = time.monotonic()
        self._last = self._start

    def message(self) -> str:
        """The current progress line."""
        elapsed = time.monotonic() - self._start
        rate = self.done / elapsed if elapsed > 0 else 0.0
        eta = (self.total - self.done) / rate if rate > 0 else float("nan")
        percent = 100.0 * self.done / self.total if self.total else 100.0
        eta_text = format_duration(eta) if eta == eta else "?"
        return (f"{self.description}: {self.done}/{self.total} {self.unit} ({percent:.1f}%), "
                f"{rate:.1f}/s, elapsed {format_duration(elapsed)}, ETA {eta_text}")

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
