"""The range of one activation tensor, learned while training, applied as int8 rounding."""

from __future__ import annotations

import keras
import tensorflow as tf

from deeplab.quantization.simulation import fake_quant_activations, is_simulating

# The original's (contrib.quantize) moving-average decay and initial range.
EMA_DECAY = 0.999
INITIAL_RANGE = (-6.0, 6.0)


@keras.saving.register_keras_serializable(package="deeplab")
class ActivationQuantizer(keras.layers.Layer):
    """Fake-quantizes a tensor to per-tensor int8 over a moving-average [min, max] range.

    While training (``training=True``) each batch's min and max (widened to contain 0)
    update the range by an exponential moving average, and the updated range rounds the
    batch, as the TF1 original's ``MovingAvgQuantize``. One difference: the decay follows
    ``tf.train.ExponentialMovingAverage``'s ``num_updates`` schedule, ``min(decay,
    n / (n + 9))`` after n batches, so the first batch sets the range and the next ones
    weigh in almost evenly until the decay reaches its value. The original started every
    range at [-6, 6] with the full decay and needed thousands of steps to forget it; with
    ``--quantize_delay_step=0``, its own recipe, the first steps trained against that
    arbitrary range. Until a batch has been seen the range is the original's [-6, 6], which
    :func:`unlearned_quantizers` reports. In inference the stored range is used as it is.
    Outside :func:`deeplab.quantization.simulation` the layer is the identity.

    Args:
        decay: the moving average's decay.
        fixed_range: (min, max) known in advance (e.g. 0-255 pixels): no variables.
        **kwargs: base layer arguments.

    Example:
        >>> quantizer = ActivationQuantizer(name="output_quantizer")
        >>> y = quantizer(keras.ops.linspace(-1.0, 3.0, 9), training=True)
        >>> float(quantizer.maximum.numpy())
        3.0
    """

    def __init__(self, decay: float = EMA_DECAY, fixed_range: tuple | None = None, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"ActivationQuantizer: decay must be in [0, 1), got {decay}.")
        self.decay = float(decay)
        self.fixed_range = None if fixed_range is None else tuple(float(v) for v in fixed_range)

    def build(self, input_shape=None):
        if self.fixed_range is None:
            low, high = INITIAL_RANGE
            # float32 under mixed precision too (no autocast: FakeQuant takes float32);
            # replicas assign the mean of their values.
            common = dict(shape=(), trainable=False, dtype="float32", autocast=False,
                          aggregation="mean")
            self.minimum = self.add_weight(name="min", **common,
                                           initializer=keras.initializers.Constant(low))
            self.maximum = self.add_weight(name="max", **common,
                                           initializer=keras.initializers.Constant(high))
            # Batches seen; 0 means the range was never learned.
            self.observed = self.add_weight(name="observed", initializer="zeros", **common)
        self.built = True

    def call(self, inputs, training=None):
        if not is_simulating():
            return inputs
        x = tf.cast(inputs, tf.float32)
        if self.fixed_range is not None:
            minimum, maximum = self.fixed_range
        elif training:
            minimum, maximum = self._update_range(x)
        else:
            minimum, maximum = self.minimum.value, self.maximum.value
        return tf.cast(fake_quant_activations(x, minimum, maximum), inputs.dtype)

    def _update_range(self, x):
        batch_min = tf.minimum(tf.reduce_min(x), 0.0)
        batch_max = tf.maximum(tf.reduce_max(x), 0.0)
        # tf.train.ExponentialMovingAverage's num_updates schedule: the first batch sets
        # the range (decay 0), the next ones weigh in almost evenly, and the decay reaches
        # its value after about 10 / (1 - decay) batches.
        seen = self.observed.value
        decay = tf.minimum(self.decay, seen / (seen + 9.0))
        minimum = decay * self.minimum.value + (1 - decay) * batch_min
        maximum = decay * self.maximum.value + (1 - decay) * batch_max
        self.minimum.assign(minimum)
        self.maximum.assign(maximum)
        self.observed.assign(seen + 1.0)  # the same on every replica
        return tf.stop_gradient(minimum), tf.stop_gradient(maximum)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(decay=self.decay, fixed_range=self.fixed_range)
        return config
