"""Merging the logits of the original's image pyramid (``--merge_method``)."""

from __future__ import annotations

import keras
import tensorflow as tf

METHODS = ("max", "avg")


@keras.saving.register_keras_serializable(package="deeplab")
class PyramidMerge(keras.layers.Layer):
    """Element-wise max or mean of same-shaped logits (one per pyramid scale).

    Args:
        method: "max" (the original's default) or "avg".
        **kwargs: base layer arguments.

    Example:
        >>> merged = PyramidMerge("avg")([keras.ops.ones((1, 5, 5, 3)),
        ...                               keras.ops.zeros((1, 5, 5, 3))])
        >>> float(merged[0, 0, 0, 0])
        0.5
    """

    # Quantization-aware training refuses this layer (prepare_model):
    # merging scales is float-only, as the original's quantized eval.
    quantization_aware = False

    def __init__(self, method: str = "max", **kwargs):
        super().__init__(**kwargs)
        if method not in METHODS:
            raise ValueError(f"PyramidMerge: method must be one of {METHODS}, got {method!r}.")
        self.method = method

    def call(self, inputs):
        stacked = tf.stack(list(inputs), axis=-1)
        if self.method == "max":
            return tf.reduce_max(stacked, axis=-1)
        return tf.reduce_mean(stacked, axis=-1)

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        config = super().get_config()
        config["method"] = self.method
        return config
