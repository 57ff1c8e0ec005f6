"""Termination signals that unwind: SIGTERM (a scheduler, ``kill``, a preempted VM) and
SIGHUP (a closed terminal) raise :class:`Terminated` in the main thread, as Ctrl-C raises
``KeyboardInterrupt``, so every ``finally`` runs on the way out: the atomic writers
(``deeplab.runs.atomic``) remove their temporary files and folders, pools shut down, the
run lock is released. Their default action would end the process where it stands and
leave a hidden temporary folder under an export path for good.

The trainer replaces this while it trains (``deeplab.training.safeguards.StopSignals``: the
step in progress finishes and is saved); every binary has it (``deeplab.cli.runner``).
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

TERMINATION_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


class Terminated(KeyboardInterrupt):
    """A termination signal arrived; what was complete is kept, nothing is half-written.

    A ``KeyboardInterrupt`` so that whatever cleans up after Ctrl-C cleans up after it too.

    Attributes:
        number: the signal's number.
    """

    def __init__(self, number: int):
        super().__init__(signal.Signals(number).name)
        self.number = number

    @property
    def name(self) -> str:
        return signal.Signals(self.number).name

    @property
    def exit_status(self) -> int:
        """The shell's convention for a process ended by a signal: 128 + its number."""
        return 128 + int(self.number)


def _raise(number, frame) -> None:
    # A second signal while the first unwinds takes the default action (ends the process
    # now), as a second Ctrl-C or a second SIGTERM to the trainer does.
    signal.signal(number, signal.SIG_DFL)
    raise Terminated(number)


@contextlib.contextmanager
def termination_raises(signals=TERMINATION_SIGNALS) -> Iterator[None]:
    """Within the block, ``signals`` raise :class:`Terminated` in the main thread (elsewhere,
    where handlers cannot be installed, this does nothing); the previous handlers are put
    back after it.

    Example:
        >>> with termination_raises():
        ...     export_saved_model(model, "exp/export")   # SIGTERM: no temporary folder left
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {number: signal.signal(number, _raise) for number in signals}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
