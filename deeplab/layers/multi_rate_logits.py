"""The original's DeepLabv2-style logits: one conv per atrous rate, summed."""

from __future__ import annotations

from collections.abc import Sequence

import keras
import tensorflow as tf

from deeplab.layers.atrous_conv2d import AtrousConv2D
from deeplab.layers.conv_bn_act import l2_regularizer


@keras.saving.register_keras_serializable(package="deeplab")
class MultiRateLogits(keras.layers.Layer):
    """Sum of ``len(atrous_rates)`` logits convs, each with its own rate and bias.

    What the original's ``get_branch_logits`` computes when ``aspp_with_batch_norm`` is
    False: no ASPP, the backbone features go to one ``kernel_size`` conv per rate (no BN, no
    activation, TruncatedNormal(0.01) weights) and the branch logits are added (DeepLabv2's
    ASPP-L head). With one rate and kernel 1 it is the usual 1x1 logits conv.

    Args:
        num_classes: output channels.
        atrous_rates: one branch per rate.
        kernel_size: the branches' kernel (the original's ``logits_kernel_size``).
        weight_decay: L2 weight decay of the kernels.
        **kwargs: base layer arguments.

    Example:
        >>> layer = MultiRateLogits(21, (6, 12, 18, 24), kernel_size=3)
        >>> layer(keras.ops.ones((1, 33, 33, 64))).shape
        (1, 33, 33, 21)

    Reference:
        Chen et al., "DeepLab: Semantic Image Segmentation with Deep Convolutional Nets,
        Atrous Convolution, and Fully Connected CRFs" (TPAMI 2017), ASPP-L.
    """

    # Quantization-aware training refuses this layer (prepare_model):
    # the sum of its logits convs has no int8 form here yet.
    quantization_aware = False

    def __init__(self, num_classes: int, atrous_rates: Sequence[int], kernel_size: int = 1,
                 weight_decay: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        if not atrous_rates:
            raise ValueError("MultiRateLogits: needs at least one atrous rate.")
        self.num_classes = num_classes
        self.atrous_rates = tuple(int(r) for r in atrous_rates)
        self.kernel_size = kernel_size
        self.weight_decay = weight_decay
        # The original's scopes: logits/semantic, logits/semantic_1, ...
        self.branches = [
            AtrousConv2D(num_classes, kernel_size, dilation_rate=rate, use_bias=True,
                         kernel_initializer=keras.initializers.TruncatedNormal(stddev=0.01),
                         kernel_regularizer=l2_regularizer(weight_decay),
                         name="semantic" if i == 0 else f"semantic_{i}")
            for i, rate in enumerate(self.atrous_rates)]

    def build(self, input_shape):
        for branch in self.branches:
            branch.build(input_shape)
        self.built = True

    def call(self, inputs):
        outputs = [branch(inputs) for branch in self.branches]
        return outputs[0] if len(outputs) == 1 else tf.add_n(outputs)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.num_classes)

    def get_config(self):
        config = super().get_config()
        config.update(num_classes=self.num_classes, atrous_rates=self.atrous_rates,
                      kernel_size=self.kernel_size, weight_decay=self.weight_decay)
        return config
