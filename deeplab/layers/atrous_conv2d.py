"""A Conv2D with native dilation (runs on every device) and fixed padding for strides."""

from __future__ import annotations

import keras
import tensorflow as tf

from deeplab.ops import conv2d, fixed_padding_amounts
from deeplab.quantization import add_output_quantizer, fake_quant_weights, simulates


@keras.saving.register_keras_serializable(package="deeplab")
class AtrousConv2D(keras.layers.Conv2D):
    """Keras ``Conv2D`` with the original release's atrous and padding behaviour.

    Two differences from ``keras.layers.Conv2D`` (channels-last only):

    * Dilation runs ``tf.nn.conv2d(..., dilations=r)`` directly (:func:`deeplab.ops.conv2d`,
      whose gradient runs on every device). Keras' own path lowers a dilated conv to
      SPACE_TO_BATCH_ND + conv + BATCH_TO_SPACE_ND, which is slower and, in TFLite, blocks
      BN folding; the native op converts to a dilated CONV_2D (verified_notes.md).
    * ``explicit_padding=True`` pads ``fixed_padding`` amounts and runs VALID, so a
      strided conv equals the stride-1 conv subsampled (the original's ``conv2d_same``).
      Without it, strided convs use TF's SAME padding (MobileNetV2 in the original).

    Args:
        filters: output channels.
        kernel_size: int or pair.
        strides: int or pair; must be 1 when ``dilation_rate`` > 1.
        dilation_rate: int or pair.
        explicit_padding: fixed padding for strided convs (see above).
        **kwargs: every other ``keras.layers.Conv2D`` argument.

    Example:
        >>> layer = AtrousConv2D(8, 3, dilation_rate=2, use_bias=False)
        >>> layer(keras.ops.ones((1, 9, 9, 4))).shape
        (1, 9, 9, 8)
    """

    def __init__(self, filters, kernel_size, explicit_padding: bool = False, **kwargs):
        kwargs.setdefault("padding", "same")
        if kwargs["padding"] != "same":
            raise ValueError(
                f"AtrousConv2D padding must be 'same' (got {kwargs['padding']!r}); set "
                "explicit_padding=True for the original's fixed padding."
            )
        super().__init__(filters, kernel_size, **kwargs)
        if self.data_format != "channels_last":
            raise ValueError("AtrousConv2D supports channels_last only.")
        self.explicit_padding = explicit_padding
        self.output_quantizer = None  # set by deeplab.quantization.prepare_model

    def call(self, inputs, training=None):
        if not simulates(self):
            return super().call(inputs)
        # Quantization-aware: the kernel rounded per output channel, the output per tensor.
        outputs = self.convolution_op(inputs, fake_quant_weights(self.kernel))
        if self.use_bias:
            outputs = outputs + tf.cast(self.bias, outputs.dtype)
        if self.activation is not None:
            outputs = self.activation(outputs)
        return self.output_quantizer(outputs, training=training)

    def add_quantizers(self) -> None:
        """Quantization-aware training: range tracking for the conv's output."""
        add_output_quantizer(self)

    def convolution_op(self, inputs, kernel):
        kernel = tf.cast(kernel, inputs.dtype)
        padding = "SAME"
        if self.explicit_padding and max(self.strides) > 1:
            inputs = _pad_fixed(inputs, self.kernel_size, self.dilation_rate)
            padding = "VALID"
        return conv2d(inputs, kernel, self.strides, padding, self.dilation_rate)

    def get_config(self):
        config = super().get_config()
        config["explicit_padding"] = self.explicit_padding
        return config


def _pad_fixed(inputs, kernel_size, dilation_rate):
    """Pads H and W by the original's ``fixed_padding`` amounts."""
    pad_h = fixed_padding_amounts(kernel_size[0], dilation_rate[0])
    pad_w = fixed_padding_amounts(kernel_size[1], dilation_rate[1])
    return tf.pad(inputs, [[0, 0], list(pad_h), list(pad_w), [0, 0]])
