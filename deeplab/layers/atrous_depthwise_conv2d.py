"""A DepthwiseConv2D with dilation that runs on every device and fixed padding for strides."""

from __future__ import annotations

import keras
import tensorflow as tf

from deeplab.layers.atrous_conv2d import _pad_fixed
from deeplab.ops import depthwise_conv2d


@keras.saving.register_keras_serializable(package="deeplab")
class AtrousDepthwiseConv2D(keras.layers.DepthwiseConv2D):
    """Keras ``DepthwiseConv2D`` with portable dilation and optional fixed padding.

    The conv is :func:`deeplab.ops.depthwise_conv2d`: TensorFlow runs a dilated one in the
    space-to-batch form, whose kernels exist on every device; traced for TFLite (inside
    :func:`deeplab.ops.native_dilation`) it becomes one dilated DEPTHWISE_CONV_2D with BN
    folded in (verified_notes.md). Channels-last only.

    Args:
        kernel_size: int or pair.
        strides: int or pair; must be 1 when ``dilation_rate`` > 1.
        dilation_rate: int or pair.
        explicit_padding: pad the original's ``fixed_padding`` for strided convs.
        **kwargs: every other ``keras.layers.DepthwiseConv2D`` argument.

    Example:
        >>> layer = AtrousDepthwiseConv2D(3, dilation_rate=6, use_bias=False)
        >>> layer(keras.ops.ones((1, 33, 33, 8))).shape
        (1, 33, 33, 8)
    """

    def __init__(self, kernel_size, explicit_padding: bool = False, **kwargs):
        kwargs.setdefault("padding", "same")
        if kwargs["padding"] != "same":
            raise ValueError(
                f"AtrousDepthwiseConv2D padding must be 'same' (got {kwargs['padding']!r}); "
                "set explicit_padding=True for the original's fixed padding."
            )
        super().__init__(kernel_size, **kwargs)
        if self.data_format != "channels_last":
            raise ValueError("AtrousDepthwiseConv2D supports channels_last only.")
        if max(self.strides) > 1 and max(self.dilation_rate) > 1:
            raise ValueError(
                f"AtrousDepthwiseConv2D {self.name!r}: strides {self.strides} and "
                f"dilation_rate {self.dilation_rate} cannot both exceed 1."
            )
        self.explicit_padding = explicit_padding

    def convolution_op(self, inputs, kernel):
        """The depthwise conv with ``kernel`` (this layer's, or a folded / quantized one)."""
        padding = "SAME"
        if self.explicit_padding and max(self.strides) > 1:
            inputs = _pad_fixed(inputs, self.kernel_size, self.dilation_rate)
            padding = "VALID"
        return depthwise_conv2d(inputs, tf.cast(kernel, inputs.dtype), self.strides,
                                padding, self.dilation_rate)

    def call(self, inputs):
        outputs = self.convolution_op(inputs, self.kernel)
        if self.use_bias:
            outputs = outputs + tf.cast(self.bias, outputs.dtype)
        if self.activation is not None:
            outputs = self.activation(outputs)
        return outputs

    def get_config(self):
        config = super().get_config()
        config["explicit_padding"] = self.explicit_padding
        return config
