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


class CollapseWatch:
    """Warns once when training collapses to one class: more than ``share`` of the pixels
    the model predicts (on the labelled pixels of its training batches) are one class for
    ``patience`` log intervals in a row, after ``warmup_steps`` (early on, predicting the
    majority class everywhere is a normal phase). On an imbalanced data set a collapsed
    model keeps a low loss and nothing else says so; class balancing is the usual cure.

    The counts are taken in the training step from the logits the loss sees (no extra
    forward pass), into a per-replica variable read at the log steps.

    Args:
        num_classes: the model's classes.
        training_steps: the run's ``training_number_of_steps``.
        slow_start_step: the run's ``slow_start_step``.
        patience: log intervals in a row that must be collapsed.
        share: the fraction of predicted pixels that counts as collapsed.

    Must be built in the strategy's scope.
    """

    # The warm-up: the slow start, and at least a tenth of the run or this many steps. (The
    # quickstart predicts 99.9% background at step 50 and 86% at step 100, as it should.)
    MIN_WARMUP_STEPS = 100

    def __init__(self, num_classes: int, training_steps: int, slow_start_step: int = 0,
                 patience: int = 3, share: float = 0.99):
        import tensorflow as tf

        self.warmup_steps = max(slow_start_step, training_steps // 10, self.MIN_WARMUP_STEPS)
        self.patience, self.share = patience, share
        self.strategy = tf.distribute.get_strategy()
        # Summed on read over the replicas; each replica adds its own batch's counts.
        self.counts = tf.Variable(tf.zeros([num_classes]), trainable=False,
                                  name="predicted_pixels",
                                  synchronization=tf.VariableSynchronization.ON_READ,
                                  aggregation=tf.VariableAggregation.SUM)
        self.streak: list[tuple[int, float]] = []  # (class, share) of the last intervals
        self.warned = False

    def count(self, logits, labels, ignore_label: int) -> None:
        """Adds one replica's predicted pixels per class (called in the training step).

        Args:
            logits: [N, h, w, C] (the loss's).
            labels: [N, H, W, 1] class ids; only pixels not ``ignore_label`` count (padding
                and void tell nothing of a collapse).
        """
        import tensorflow as tf

        from deeplab.ops import resize_nearest

        if (tf.distribute.in_cross_replica_context()
                or tf.distribute.get_strategy() is not self.strategy):
            return  # a step called outside strategy.run (tests, tools): nothing to count
        labels = resize_nearest(labels, tf.shape(logits)[1:3])[..., 0]
        labelled = tf.cast(tf.not_equal(labels, ignore_label), tf.float32)
        predicted = tf.one_hot(tf.argmax(logits, axis=-1), tf.shape(logits)[-1])
        self.counts.assign_add(tf.reduce_sum(predicted * labelled[..., None], axis=[0, 1, 2]))

    def check(self, step: int, strategy) -> tuple[int, float] | None:
        """Reads and resets the counts of the interval ending at ``step`` (every worker
        reads its own replicas: no collective); returns (class, share) once, when the
        collapse is confirmed."""
        import numpy as np

        parts = strategy.experimental_local_results(self.counts)
        counts = sum(np.asarray(part, np.float64) for part in parts)
        for part in parts:
            part.assign(np.zeros(part.shape, np.float32))
        total = float(counts.sum())
        if self.warned or step <= self.warmup_steps or not total:
            return None
        top = int(np.argmax(counts))
        top_share = float(counts[top]) / total
        if top_share <= self.share or (self.streak and self.streak[-1][0] != top):
            self.streak = []
        if top_share > self.share:
            self.streak.append((top, top_share))
        if len(self.streak) < self.patience:
            return None
        self.warned = True
        return top, min(s for _, s in self.streak)


def collapse_warning(class_names, index: int, share: float, intervals: int,
                     step: int) -> str:
    """The line the trainer prints for :meth:`CollapseWatch.check`'s (class, share)."""
    name = class_names[index] if index < len(class_names) else f"class {index}"
    amount = "all" if share >= 0.9995 else f"at least {100 * share:.1f}%"
    return (f"warning: the model has collapsed to one class: in each of the last {intervals} "
            f"log intervals (up to step {step}) {amount} of the pixels it predicted were "
            f"{name!r}. On an imbalanced data set a model keeps a low loss this way; "
            "train with --class_balancing=median_frequency (or set --label_weights), and see "
            "python datasets/dataset_stats.py for the class counts")
