"""In-model image preprocessing, as the original's ``get_network`` wrapper."""

from __future__ import annotations

import keras
import tensorflow as tf

MODES = ("unit_range", "imagenet_mean")
IMAGENET_MEAN_RGB = (123.15, 115.90, 103.06)


@keras.saving.register_keras_serializable(package="deeplab")
class Preprocess(keras.layers.Layer):
    """Maps 0–255 images (float or uint8) to the backbone's input range.

    ``unit_range``: ``x * 2 / 255 - 1`` (Xception, MobileNet, ``_beta`` ResNets).
    ``imagenet_mean``: ``x - [123.15, 115.90, 103.06]`` (ResNet-v1 50/101); channels past
    the third get mean 0, as in the original.

    Args:
        mode: "unit_range" or "imagenet_mean".
        **kwargs: base layer arguments.

    Example:
        >>> Preprocess("unit_range")(keras.ops.full((1, 2, 2, 3), 255.0))[0, 0, 0]
        [1.0, 1.0, 1.0]
    """

    def __init__(self, mode: str = "unit_range", **kwargs):
        super().__init__(**kwargs)
        if mode not in MODES:
            raise ValueError(f"Preprocess: mode must be one of {MODES}, got {mode!r}.")
        self.mode = mode

    def call(self, inputs):
        x = tf.cast(inputs, self.compute_dtype)
        if self.mode == "unit_range":
            return x * (2.0 / 255.0) - 1.0
        channels = x.shape[-1]
        mean = list(IMAGENET_MEAN_RGB[:channels]) + [0.0] * max(0, channels - 3)
        return x - tf.constant(mean, dtype=x.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config["mode"] = self.mode
        return config
