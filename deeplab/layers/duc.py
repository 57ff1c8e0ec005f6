"""Dense Upsampling Convolution: learned upsampling of logits by depth_to_space."""

from __future__ import annotations

import keras
import tensorflow as tf

from deeplab.layers.atrous_conv2d import AtrousConv2D
from deeplab.layers.conv_bn_act import l2_regularizer

VARIANTS = ("conv", "aspp")


@keras.saving.register_keras_serializable(package="deeplab")
class DUC(keras.layers.Layer):
    """Predicts ``d*d*num_classes`` channels at stride d, rearranged to full resolution.

    ``variant="conv"``: one conv (``kernel_size``) to d²·L channels. ``variant="aspp"``:
    the official TuSimple head, a sum of 3x3 convs at ``rates`` (6, 12, 18, 24), each to
    d²·L channels, with biases and no BN or activation. Then ``depth_to_space(d)``
    gives logits of (h·d, w·d, L); output pixel (y·d + i, x·d + j) reads channel
    (i·d + j)·L + l (TF's NHWC order, which differs from the MXNet code's class-major
    order only in how channels are numbered).

    Args:
        num_classes: L.
        upsample_factor: d, the stride of the input features.
        variant: "conv" or "aspp".
        kernel_size: kernel of the "conv" variant.
        rates: dilation rates of the "aspp" variant.
        weight_decay: slim-style L2 on the kernels.
        **kwargs: base layer arguments.

    Example:
        >>> duc = DUC(num_classes=19, upsample_factor=8)
        >>> duc(keras.ops.ones((1, 16, 16, 256))).shape
        (1, 128, 128, 19)

    Reference:
        Wang et al., "Understanding Convolution for Semantic Segmentation", WACV 2018.
    """

    # Quantization-aware training refuses this layer (prepare_model):
    # its branch sum and reshapes have no int8 form here yet.
    quantization_aware = False

    def __init__(
        self,
        num_classes: int,
        upsample_factor: int,
        variant: str = "conv",
        kernel_size: int = 3,
        rates=(6, 12, 18, 24),
        weight_decay: float = 0.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if variant not in VARIANTS:
            raise ValueError(f"DUC: variant must be one of {VARIANTS}, got {variant!r}.")
        if upsample_factor < 1:
            raise ValueError(f"DUC: upsample_factor must be >= 1, got {upsample_factor}.")
        self.num_classes = num_classes
        self.upsample_factor = upsample_factor
        self.variant = variant
        self.kernel_size = kernel_size
        self.rates = tuple(rates)
        self.weight_decay = weight_decay
        channels = upsample_factor * upsample_factor * num_classes
        common = dict(
            kernel_regularizer=l2_regularizer(weight_decay),
            kernel_initializer=keras.initializers.TruncatedNormal(stddev=0.01),
            dtype=self.dtype_policy,
        )
        if variant == "conv":
            self.convs = [AtrousConv2D(channels, kernel_size, name="duc_conv", **common)]
        else:
            self.convs = [
                AtrousConv2D(channels, 3, dilation_rate=r, name=f"duc_conv_rate{r}", **common)
                for r in self.rates
            ]

    def build(self, input_shape):
        for conv in self.convs:
            conv.build(input_shape)

    def call(self, inputs):
        x = tf.add_n([conv(inputs) for conv in self.convs])
        if self.upsample_factor == 1:
            return x
        return tf.nn.depth_to_space(x, self.upsample_factor)

    def compute_output_shape(self, input_shape):
        d = self.upsample_factor
        h, w = input_shape[1], input_shape[2]
        return (
            input_shape[0],
            None if h is None else h * d,
            None if w is None else w * d,
            self.num_classes,
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            num_classes=self.num_classes,
            upsample_factor=self.upsample_factor,
            variant=self.variant,
            kernel_size=self.kernel_size,
            rates=list(self.rates),
            weight_decay=self.weight_decay,
        )
        return config
