"""BatchNormalization with the original's ``fine_tune_batch_norm`` semantics."""

from __future__ import annotations

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="deeplab")
class BatchNorm(keras.layers.BatchNormalization):
    """BatchNormalization whose moving statistics can be frozen while gamma/beta train.

    The original ran BN with ``is_training = is_training and fine_tune_batch_norm``: with
    ``fine_tune_batch_norm=False`` batch statistics are not used or updated, yet gamma
    and beta stay trainable variables that receive gradients (slim semantics). Keras'
    ``layer.trainable = False`` would freeze gamma/beta too, so this layer instead runs in
    inference mode whenever ``update_statistics`` is False.

    With ``synchronized=True`` the batch statistics are taken over all replicas' batches
    in two passes (mean first, then the mean squared deviation). Keras' own synchronised
    moments use E[x²] − E[x]², which cancels catastrophically when |mean| ≫ std (early
    layers, float32): the variance then depends on the summation order, so 2 replicas
    and 1 device disagreed by ~1 % in the gradients of the first convs.

    Args:
        update_statistics: use and update batch statistics when called with
            ``training=True``. False reproduces ``fine_tune_batch_norm=False``.
        **kwargs: every ``keras.layers.BatchNormalization`` argument (``momentum`` is the
            original's ``decay``).

    Example:
        >>> bn = BatchNorm(momentum=0.9997, epsilon=1e-5, update_statistics=False)
        >>> y = bn(keras.ops.ones((2, 4, 4, 3)), training=True)  # uses moving stats
    """

    def __init__(self, update_statistics: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.update_statistics = update_statistics

    def call(self, inputs, training=None, mask=None):
        if not self.update_statistics:
            training = False
        return super().call(inputs, training=training, mask=mask)

    def uses_batch_statistics(self, training) -> bool:
        """Whether a call with ``training`` normalises with batch statistics."""
        return bool(training) and self.update_statistics and self.trainable

    def slope(self):
        """``gamma / sqrt(moving_variance + epsilon)``: d output / d input when not
        using batch statistics (BN is then affine)."""
        gamma = self.gamma if self.scale else 1.0
        return gamma * tf.math.rsqrt(self.moving_variance + self.epsilon)

    def _moments(self, inputs, mask):
        context = tf.distribute.get_replica_context()
        if not self.synchronized or mask is not None or context is None:
            return super()._moments(inputs, mask)
        return synchronized_moments(inputs, self._reduction_axes, context)

    def get_config(self):
        config = super().get_config()
        config["update_statistics"] = self.update_statistics
        return config


def synchronized_moments(x, axes, context) -> tuple:
    """Mean and variance of ``x`` over ``axes`` and over every replica, in two passes.

    Args:
        x: this replica's float tensor.
        axes: the reduction axes (all but the channel axis).
        context: the ``tf.distribute`` replica context whose replicas share the statistics.
    """
    count = tf.cast(tf.reduce_prod(tf.gather(tf.shape(x), axes)), x.dtype)
    total, count = context.all_reduce(
        tf.distribute.ReduceOp.SUM, [tf.reduce_sum(x, axes, keepdims=True), count])
    mean = total / count
    squares = context.all_reduce(
        tf.distribute.ReduceOp.SUM, tf.reduce_sum(tf.square(x - mean), axes, keepdims=True))
    return tf.squeeze(mean, axes), tf.squeeze(squares / count, axes)
