"""Squeeze-and-excitation gate of MobileNetV3 (slim's ``conv_blocks.squeeze_excite``)."""

from __future__ import annotations

import keras
import tensorflow as tf

from deeplab.layers.conv_bn_act import ConvBNAct


@keras.saving.register_keras_serializable(package="deeplab")
class SqueezeExcite(keras.layers.Layer):
    """``x * gate(conv(relu(conv(mean(x)))))``: a per-channel gate from the global mean.

    Both 1x1 convs have biases and no BatchNorm (``Conv`` squeezes to
    ``squeeze_channels`` with ReLU, ``Conv_1`` expands back with the gating activation),
    so an original checkpoint's ``<block>/squeeze_excite/Conv{,_1}/{weights,biases}`` map
    onto ``squeeze.conv`` and ``excite.conv``.

    Args:
        squeeze_channels: inner width (MobileNetV3: the block's expansion / 4, rounded
            to a multiple of 8).
        gating: the gate's activation; "hard_sigmoid" in MobileNetV3.
        weight_decay: slim-style L2 on the kernels.
        **kwargs: base layer arguments.

    Example:
        >>> gate = SqueezeExcite(24)
        >>> gate(keras.ops.ones((1, 17, 17, 96))).shape
        (1, 17, 17, 96)

    Reference:
        Hu et al., "Squeeze-and-Excitation Networks", CVPR 2018; Howard et al.,
        "Searching for MobileNetV3", ICCV 2019.
    """

    # Its multiply has no int8 range of its own in deeplab.quantization.
    quantization_aware = False

    def __init__(self, squeeze_channels: int, gating: str = "hard_sigmoid",
                 weight_decay: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.squeeze_channels = squeeze_channels
        self.gating = gating
        self.weight_decay = weight_decay
        common = dict(use_batch_norm=False, weight_decay=weight_decay,
                      dtype=self.dtype_policy)
        self.squeeze = ConvBNAct(squeeze_channels, 1, activation="relu", name="Conv", **common)
        self.excite = None
        self._excite_options = dict(activation=gating, name="Conv_1", **common)

    def build(self, input_shape):
        channels = input_shape[-1]
        pooled = (input_shape[0], 1, 1, channels)
        self.excite = ConvBNAct(channels, 1, **self._excite_options)
        self.squeeze.build(pooled)
        self.excite.build((input_shape[0], 1, 1, self.squeeze_channels))

    def call(self, inputs, training=None):
        pooled = tf.reduce_mean(inputs, axis=[1, 2], keepdims=True)
        gate = self.excite(self.squeeze(pooled, training=training), training=training)
        return inputs * gate

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(squeeze_channels=self.squeeze_channels, gating=self.gating,
                      weight_decay=self.weight_decay)
        return config
