"""A process's own peak memory, for tests that run a binary in a child process."""

from __future__ import annotations

from pathlib import Path


def peak_rss_mb() -> float:
    """This process's peak resident memory in MB: VmHWM, counted from its exec. Not
    ``ru_maxrss``, which Linux carries over to a (v)forked child from its parent, so a child
    of a large pytest worker would report the worker's peak instead of its own."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")
