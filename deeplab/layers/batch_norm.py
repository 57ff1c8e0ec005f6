"""BatchNormalization with the original's ``fine_tune_batch_norm`` semantics."""

from __future__ import annotations

import keras


@keras.saving.register_keras_serializable(package="deeplab")
class BatchNorm(keras.layers.BatchNormalization):
    """BatchNormalization whose moving statistics can be frozen while gamma/beta train.

    The original ran BN with ``is_training = is_training and fine_tune_batch_norm``: with
    ``fine_tune_batch_norm=False`` batch statistics are not used or updated, yet gamma
    and beta stay trainable variables that receive gradients (slim semantics). Keras'
    ``layer.trainable = False`` would freeze gamma/beta too, so this layer instead runs in
    inference mode whenever ``update_statistics`` is False.

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

    def get_config(self):
        config = super().get_config()
        config["update_statistics"] = self.update_statistics
        return config
