"""The arithmetic of simulated int8 inference: per-channel weights, folded BatchNorm.

Pure functions plus one switch. TFLite's int8 kernels (and the TF1 original's
``contrib.quantize``) fold BatchNorm into the conv and quantize the folded weights; a
quantization-aware model must quantize the same folded weights while it trains.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator

import tensorflow as tf

_SIMULATE = contextvars.ContextVar("deeplab_simulate_quantization", default=True)

# Smallest weight range: an all-zero channel would give FakeQuant a [0, 0] range.
_MIN_WEIGHT_RANGE = 1e-8


@contextlib.contextmanager
def simulation(enabled: bool) -> Iterator[None]:
    """Turns the simulation of a prepared model on or off for the calls (or tf.function
    traces) inside the block. It is on by default: a prepared model evaluates and
    exports as int8; the trainer turns it off before ``--quantize_delay_step``."""
    token = _SIMULATE.set(bool(enabled))
    try:
        yield
    finally:
        _SIMULATE.reset(token)


def is_simulating() -> bool:
    """Whether prepared layers simulate int8 arithmetic in the current call or trace."""
    return _SIMULATE.get()


def fake_quant_weights(kernel: tf.Tensor, depthwise: bool = False) -> tf.Tensor:
    """Rounds a conv kernel to int8 as TFLite stores it: per output channel, symmetric,
    narrow range (scale ``max|w| / 127``, zero point 0).

    Args:
        kernel: ``[h, w, in, out]``, or ``[h, w, channels, 1]`` with ``depthwise``.
        depthwise: a depthwise kernel, whose channels are its third axis.

    The range is taken from the kernel itself and not differentiated (the straight-through
    estimator passes the gradient to the float kernel inside the range).
    """
    kernel = tf.cast(kernel, tf.float32)  # FakeQuant takes float32 (mixed precision)
    if depthwise:
        kernel = tf.transpose(kernel, [0, 1, 3, 2])
    bound = tf.stop_gradient(tf.maximum(tf.reduce_max(tf.abs(kernel), axis=[0, 1, 2]),
                                        _MIN_WEIGHT_RANGE))
    quantized = tf.quantization.fake_quant_with_min_max_vars_per_channel(
        kernel, -bound, bound, num_bits=8, narrow_range=True)
    if depthwise:
        quantized = tf.transpose(quantized, [0, 1, 3, 2])
    return quantized


def fold_batch_norm(kernel, gamma, beta, mean, variance, epsilon: float,
                    depthwise: bool = False) -> tuple[tf.Tensor, tf.Tensor]:
    """Folds BatchNorm into the conv before it: ``bn(conv(x, k)) == conv(x, k') + b'``.

    ``k' = k * gamma / sqrt(variance + epsilon)`` on the output channels and
    ``b' = beta - gamma * mean / sqrt(variance + epsilon)``.

    Returns:
        (folded kernel, folded bias).
    """
    scale = gamma * tf.math.rsqrt(variance + epsilon)
    shape = [1, 1, -1, 1] if depthwise else [1, 1, 1, -1]
    return kernel * tf.reshape(scale, shape), beta - mean * scale


def fake_quant_activations(x: tf.Tensor, minimum, maximum) -> tf.Tensor:
    """Rounds a float tensor to 256 levels over ``[minimum, maximum]`` (nudged so that 0
    is exact), as a per-tensor int8 activation of TFLite."""
    return tf.quantization.fake_quant_with_min_max_vars(
        x, minimum, maximum, num_bits=8, narrow_range=False)
