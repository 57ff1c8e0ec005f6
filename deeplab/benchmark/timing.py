"""Wall-clock timing of a blocking call: first call apart, then the median of the rest."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable


@dataclasses.dataclass(frozen=True)
class Timing:
    """Seconds per call.

    Attributes:
        first_s: the first call, with tracing / XLA compilation.
        median_s: median of ``iterations`` calls after ``warmup`` more.
        min_s: fastest of those calls.
        iterations: how many calls the median is over.
    """

    first_s: float
    median_s: float
    min_s: float
    iterations: int


def time_call(fn: Callable[[], object], iterations: int = 5, warmup: int = 1) -> Timing:
    """Times ``fn``, which must return only when its work is done (e.g. call ``.numpy()``)."""
    if iterations < 1:
        raise ValueError(f"time_call: iterations must be >= 1, got {iterations}.")
    start = time.perf_counter()
    fn()
    first = time.perf_counter() - start
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(iterations):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    times.sort()
    middle = len(times) // 2
    median = times[middle] if len(times) % 2 else (times[middle - 1] + times[middle]) / 2
    return Timing(first, median, times[0], iterations)
