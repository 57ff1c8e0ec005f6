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

    The moving variance is updated with the *unbiased* batch variance ``n / (n - 1) *
    var``, ``n`` being the number of values per channel (batch x height x width, over all
    replicas when synchronised), as the original's fused TF1 batch norm did (its kernel
    returns the Bessel-corrected variance for the moving average and normalises with the
    biased one). Keras' layer averages the biased variance, which shrinks the moving
    variance most where ``n`` is small: the image-pooling BN sees one value per image, a
    factor 2 at batch 2. The output is unchanged; ``n = 1`` averages the variance as is,
    as TensorFlow's kernel does.

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
        channels_last = self.axis in (-1, len(inputs.shape) - 1)
        if (training and not self.update_statistics and mask is None and not self.renorm
                and channels_last):
            return self._frozen(inputs)
        if not self.uses_batch_statistics(training) or mask is not None or self.renorm:
            return super().call(inputs, training=training and self.update_statistics,
                                mask=mask)
        # Keras' own call, but for the moving-variance update (see the class docstring).
        x = tf.cast(inputs, keras.backend.result_type(inputs.dtype, "float32"))
        mean, variance, count = self._moments_and_count(x)
        bessel = count / tf.maximum(count - 1.0, 1.0)
        decay = 1.0 - self.momentum
        # The original's assign_moving_average: moving -= (1 - decay) * (moving - value).
        self.moving_mean.assign_sub(
            (tf.cast(self.moving_mean, x.dtype) - mean) * decay)
        self.moving_variance.assign_sub(
            (tf.cast(self.moving_variance, x.dtype) - variance * bessel) * decay)
        outputs = keras.ops.batch_normalization(
            x, mean, variance, axis=self.axis,
            offset=tf.cast(self.beta, x.dtype) if self.center else None,
            scale=tf.cast(self.gamma, x.dtype) if self.scale else None,
            epsilon=self.epsilon)
        return tf.cast(outputs, self.compute_dtype)

    def _frozen(self, inputs):
        """Training with frozen statistics: ``(x - mean) * gamma / sqrt(var + eps) + beta``,
        the fused TF1 kernel's form. Keras' ``x * s + (beta - mean * s)`` cancels in float32
        when |mean| >> std, and through it the gamma/beta gradients of
        ``fine_tune_batch_norm=False`` moved ~1 % away from the original's (measured:
        1.3e-3 of the largest gradient with this form 1.3e-6, below the original's own
        kernel-to-kernel noise of 4.7e-4)."""
        x = tf.cast(inputs, keras.backend.result_type(inputs.dtype, "float32"))
        scale = tf.math.rsqrt(tf.cast(self.moving_variance, x.dtype) + self.epsilon)
        if self.scale:
            scale = scale * tf.cast(self.gamma, x.dtype)
        y = (x - tf.cast(self.moving_mean, x.dtype)) * scale
        if self.center:
            y = y + tf.cast(self.beta, x.dtype)
        return tf.cast(y, self.compute_dtype)

    def uses_batch_statistics(self, training) -> bool:
        """Whether a call with ``training`` normalises with batch statistics."""
        return bool(training) and self.update_statistics and self.trainable

    def slope(self):
        """``gamma / sqrt(moving_variance + epsilon)``: d output / d input when not
        using batch statistics (BN is then affine)."""
        gamma = self.gamma if self.scale else 1.0
        return gamma * tf.math.rsqrt(self.moving_variance + self.epsilon)

    def _moments(self, inputs, mask):
        if mask is not None:
            return super()._moments(inputs, mask)
        mean, variance, _ = self._moments_and_count(inputs)
        return mean, variance

    def _moments_and_count(self, x) -> tuple:
        """Batch mean, biased variance and the number of values per channel they cover
        (over every replica when synchronised)."""
        context = tf.distribute.get_replica_context()
        if self.synchronized and context is not None:
            return synchronized_moments(x, self._reduction_axes, context)
        mean, variance = tf.nn.moments(x, self._reduction_axes)
        return mean, variance, _count(x, self._reduction_axes)

    def get_config(self):
        config = super().get_config()
        config["update_statistics"] = self.update_statistics
        return config


def _count(x, axes):
    """The number of values per channel of ``x`` (the product of the ``axes`` sizes)."""
    return tf.cast(tf.reduce_prod(tf.gather(tf.shape(x), axes)), x.dtype)


def synchronized_moments(x, axes, context) -> tuple:
    """Mean, biased variance and value count of ``x`` over ``axes`` and over every
    replica, in two passes.

    Args:
        x: this replica's float tensor.
        axes: the reduction axes (all but the channel axis).
        context: the ``tf.distribute`` replica context whose replicas share the statistics.
    """
    total, count = context.all_reduce(
        tf.distribute.ReduceOp.SUM, [tf.reduce_sum(x, axes, keepdims=True), _count(x, axes)])
    mean = total / count
    squares = context.all_reduce(
        tf.distribute.ReduceOp.SUM, tf.reduce_sum(tf.square(x - mean), axes, keepdims=True))
    return tf.squeeze(mean, axes), tf.squeeze(squares / count, axes), count
