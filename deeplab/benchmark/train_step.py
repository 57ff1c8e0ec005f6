"""Train-step throughput and the memory it takes."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator

import numpy as np

from deeplab.benchmark.forward import build_preset
from deeplab.benchmark.timing import time_call


class PeakRSS:
    """Samples this process's resident memory every ``interval`` s while active.

    TF's own CPU allocator statistics (``get_memory_info``) count tensors only; the
    resident set also holds graphs, kernels and Python. ``peak_mb`` is the highest
    sample, ``baseline_mb`` the RSS when sampling started.
    """

    def __init__(self, interval: float = 0.01):
        self._interval = interval
        self._stop = threading.Event()
        self.baseline_mb = self.peak_mb = self._rss_mb()

    @staticmethod
    def _rss_mb() -> float:
        try:
            import psutil

            return psutil.Process().memory_info().rss / 2**20
        except ImportError:  # psutil is optional; Linux has the figure in /proc.
            with open("/proc/self/statm", encoding="ascii") as f:
                return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

    def _sample(self):
        while not self._stop.wait(self._interval):
            self.peak_mb = max(self.peak_mb, self._rss_mb())

    @contextlib.contextmanager
    def active(self) -> Iterator[PeakRSS]:
        thread = threading.Thread(target=self._sample, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            thread.join()
            self.peak_mb = max(self.peak_mb, self._rss_mb())


def _reset_tf_memory_stats() -> None:
    import tensorflow as tf

    try:
        tf.config.experimental.reset_memory_stats("CPU:0")
    except (ValueError, tf.errors.OpError):
        pass  # Older TF has no CPU allocator statistics; _tf_peak_mb says so.


def _tf_peak_mb() -> float | str:
    """Peak bytes held by TF's CPU allocator since the last reset (tensors only), in MB."""
    import tensorflow as tf

    try:
        return round(tf.config.experimental.get_memory_info("CPU:0")["peak"] / 2**20, 1)
    except (ValueError, tf.errors.OpError) as error:
        return f"unavailable: {str(error).splitlines()[0]}"


def train_step_benchmark(preset: str, size, batch_size: int = 2, steps: int = 3,
                         dtype: str = "float32") -> dict:
    """Images/s of a compiled SGD step (forward, sparse CE, backward, update) and peak RSS.

    Labels are random classes; the loss is the mean pixel cross entropy at input size,
    as the original trains with ``upsample_logits=True``.
    """
    import keras
    import tensorflow as tf

    sampler = PeakRSS()
    _reset_tf_memory_stats()
    with sampler.active():
        model = build_preset(preset, dtype)
        # No loss scaling under mixed_bfloat16: bfloat16 has float32's exponent range.
        optimizer = keras.optimizers.SGD(0.007, momentum=0.9)
        loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        rng = np.random.default_rng(0)
        images = tf.constant(rng.uniform(0, 255, (batch_size, *size, 3)).astype(np.float32))
        labels = tf.constant(rng.integers(0, model.config.num_classes, (batch_size, *size)))

        @tf.function
        def step():
            with tf.GradientTape() as tape:
                loss = loss_fn(labels, model(images, training=True))
            grads = tape.gradient(loss, model.trainable_variables)
            optimizer.apply(grads, model.trainable_variables)
            return loss

        timing = time_call(lambda: step().numpy(), steps)
    return {
        "config": preset,
        "dtype": dtype,
        "size": list(size),
        "batch_size": batch_size,
        "step_ms": round(1000 * timing.median_s, 1),
        "images_per_s": round(batch_size / timing.median_s, 3),
        "first_step_s": round(timing.first_s, 2),
        "peak_rss_mb": round(sampler.peak_mb, 1),
        "rss_growth_mb": round(sampler.peak_mb - sampler.baseline_mb, 1),
        "peak_tensor_mb": _tf_peak_mb(),
    }
