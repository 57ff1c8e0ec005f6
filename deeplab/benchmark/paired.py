"""Interleaved timing: ratios that hold on cores other people are using.

Two measurements taken a minute apart on shared cores see different contention, so their
ratio can be off by half. Calling A, B, C, A, B, C, ... and taking the ratio within each
round cancels contention that changes more slowly than a round; the median over rounds
then drops the rounds a burst hit.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def interleaved_times(calls: dict[str, Callable[[], object]], rounds: int) -> list[dict]:
    """Seconds per call for each of ``rounds`` rounds, each call once per round, in order.

    Every call runs once before the first round (tracing and warm-up). Calls must block
    until their work is done.
    """
    if rounds < 1:
        raise ValueError(f"interleaved_times: rounds must be >= 1, got {rounds}.")
    for call in calls.values():
        call()
    results = []
    for _ in range(rounds):
        times = {}
        for name, call in calls.items():
            start = time.perf_counter()
            call()
            times[name] = time.perf_counter() - start
        results.append(times)
    return results


def summarise(values: list[float]) -> dict:
    """Median with the lowest and highest value, rounded for the report."""
    return {"median": round(statistics.median(values), 3), "low": round(min(values), 3),
            "high": round(max(values), 3), "rounds": len(values)}
