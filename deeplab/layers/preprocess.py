"""In-model image preprocessing, as the original's ``get_network`` wrapper."""

from __future__ import annotations

import keras
import tensorflow as tf

from deeplab.ops import depthwise_conv2d
from deeplab.quantization import (
    ActivationQuantizer,
    add_output_quantizer,
    build_in_scope,
    fake_quant_weights,
    simulates,
)

MODES = ("unit_range", "imagenet_mean")
IMAGENET_MEAN_RGB = (123.15, 115.90, 103.06)
PIXEL_RANGE = (0.0, 255.0)


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
        self.input_quantizer = self.output_quantizer = None  # set by prepare_model

    def call(self, inputs, training=None):
        x = tf.cast(inputs, self.compute_dtype)
        scale, offset = self._affine(x.shape[-1])
        if not simulates(self):
            if self.mode == "unit_range":
                return x * scale - 1.0
            return x + tf.constant(offset, x.dtype)
        # Quantization-aware: 8-bit pixels in, and the affine map as a 1x1 depthwise conv,
        # which TFLite runs in int8 (a MUL and an ADD by constants stay float there).
        x = self.input_quantizer(x)
        kernel = fake_quant_weights(tf.fill([1, 1, x.shape[-1], 1], scale), depthwise=True)
        x = depthwise_conv2d(x, tf.cast(kernel, x.dtype)) + tf.constant(offset, x.dtype)
        return self.output_quantizer(x, training=training)

    def _affine(self, channels: int) -> tuple[float, list[float]]:
        """(scale, per-channel offset) of the preprocessing ``x * scale + offset``."""
        if self.mode == "unit_range":
            return 2.0 / 255.0, [-1.0] * channels
        mean = list(IMAGENET_MEAN_RGB[:channels]) + [0.0] * max(0, channels - 3)
        return 1.0, [-m for m in mean]

    def add_quantizers(self) -> None:
        """Quantization-aware training: 0-255 input pixels, a learned output range."""
        self.input_quantizer = build_in_scope(
            self, ActivationQuantizer(fixed_range=PIXEL_RANGE, name="input_quantizer"))
        add_output_quantizer(self)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config["mode"] = self.mode
        return config
