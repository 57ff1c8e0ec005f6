"""Brings a tensor to the spatial size of a reference tensor (logits → image size)."""

from __future__ import annotations

import keras
import tensorflow as tf

from deeplab.ops import resize_bilinear, scaled_size

METHODS = ("bilinear", "crop")


@keras.saving.register_keras_serializable(package="deeplab")
class ResizeLike(keras.layers.Layer):
    """Resizes ``inputs[0]`` to the height and width of ``inputs[1]`` (times ``scale``).

    ``bilinear`` uses the original's align-corners resize; ``crop`` keeps the top-left
    window (for DUC, whose output covers ``ceil(H / d) * d`` pixels). With ``scale`` the
    target is the original's ``scale_dimension`` of the reference size (its image pyramid
    resizes images by the scale and logits to ``scale / output stride``).

    Args:
        method: "bilinear" or "crop".
        scale: the target size is ``scale_dimension(reference size, scale)``.
        **kwargs: base layer arguments (use ``dtype="float32"`` to keep logits in float32
            under mixed precision).

    Example:
        >>> ResizeLike()([keras.ops.ones((1, 33, 33, 21)), keras.ops.ones((1, 513, 513, 3))]).shape
        (1, 513, 513, 21)
    """

    def __init__(self, method: str = "bilinear", scale: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        if method not in METHODS:
            raise ValueError(f"ResizeLike: method must be one of {METHODS}, got {method!r}.")
        if scale != 1.0 and method != "bilinear":
            raise ValueError("ResizeLike: scale needs method='bilinear'.")
        self.method = method
        self.scale = float(scale)

    def call(self, inputs):
        x, reference = inputs
        size = tf.shape(reference)[1:3]
        if self.scale != 1.0:
            size = scaled_size(size, self.scale)
        if self.method == "crop":
            return x[:, : size[0], : size[1], :]
        return resize_bilinear(x, size)

    def compute_output_shape(self, input_shape):
        x_shape, reference_shape = input_shape
        if self.scale != 1.0:
            return (x_shape[0], None, None, x_shape[-1])
        return (x_shape[0], reference_shape[1], reference_shape[2], x_shape[-1])

    def get_config(self):
        config = super().get_config()
        config["method"] = self.method
        config["scale"] = self.scale
        return config
