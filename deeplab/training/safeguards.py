"""What keeps a training run from losing work or going on blindly: stop signals, an
exploding loss (non-finite values: ``deeplab.runs.finite``)."""

from __future__ import annotations

import collections
import os
import signal
import statistics
import threading

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class StopSignals:
    """SIGTERM / SIGINT ask a training loop to stop after the current step (and save).

    A preempted cloud VM or a cluster scheduler sends SIGTERM; Ctrl-C sends SIGINT. The
    first one only sets :attr:`received`; the loop finishes its step, saves and exits. A
    second one takes the signal's default action at once (the process ends without a save),
    for a run that must die now. Handlers can only be installed from the main thread;
    elsewhere (a thread of a test, say) this does nothing.

    Example:
        >>> with StopSignals() as stop:
        ...     while not stop.received:
        ...         step()
    """

    def __init__(self, signals=STOP_SIGNALS, kill=os.kill):
        self.signals = tuple(signals)
        self.received: int | None = None
        self._kill = kill
        self._previous = {}

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            for number in self.signals:
                self._previous[number] = signal.signal(number, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)
        self._previous.clear()

    def _handle(self, number, frame) -> None:
        if self.received is None:
            self.received = number
            return
        # The second signal: the default action (terminate) now.
        signal.signal(number, signal.SIG_DFL)
        self._kill(os.getpid(), number)

    @property
    def name(self) -> str:
        return signal.Signals(self.received).name if self.received else ""


class LossWatch:
    """Warns once when the loss explodes: ``factor`` times the smaller of the run's first
    loss and the median of the last ``window`` (a learning rate far too high can climb for
    thousands of steps before anything overflows, and nothing else says so; the first loss
    of a run is about its largest when training is healthy)."""

    def __init__(self, factor: float = 1000.0, window: int = 50):
        self.factor = factor
        self.recent = collections.deque(maxlen=window)
        self.first: float | None = None
        self.warned = False

    def update(self, loss: float) -> float | None:
        """Records ``loss``; returns the reference it exploded from (the first time it is
        more than ``factor`` times it), else None."""
        if self.first is None:
            self.first = loss
            self.recent.append(loss)
            return None
        reference = min(statistics.median(self.recent), self.first)
        self.recent.append(loss)
        if reference > 0 and loss > self.factor * reference and not self.warned:
            self.warned = True
            return reference
        return None
