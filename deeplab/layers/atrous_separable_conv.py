"""The original's split separable conv: depthwise → BN → act → pointwise → BN → act."""

from __future__ import annotations

import keras

from deeplab.layers.conv_bn_act import (
    ConvBNAct,
    apply_activation,
    check_activation,
)
from deeplab.layers.norm_options import NormOptions
from deeplab.quantization import ActivationQuantizer, build_in_scope, is_simulating

PLACEMENTS = ("inside", "before")


@keras.saving.register_keras_serializable(package="deeplab")
class AtrousSeparableConv(keras.layers.Layer):
    """Depthwise atrous conv and pointwise conv, each followed by BN (+ activation).

    Unlike ``keras.layers.SeparableConv2D`` this applies BN and the activation between
    the depthwise and pointwise convs (``core/utils.split_separable_conv2d`` and
    ``xception.separable_conv2d_same``). Sublayers ``depthwise`` and ``pointwise`` map to
    the original's ``<scope>_depthwise`` and ``<scope>_pointwise`` variables.

    Args:
        filters: pointwise output channels.
        kernel_size: depthwise kernel size.
        strides: depthwise stride.
        dilation_rate: atrous rate of the depthwise conv.
        explicit_padding: fixed padding for strided convs (Xception), equal to the
            stride-1 result subsampled.
        activation: "relu", "relu6" or None.
        activation_placement: "inside" (depthwise → BN → act → pointwise → BN → act, the
            ASPP/decoder form) or "before" (act → depthwise → BN → pointwise → BN, the
            Xception pre-activation form).
        use_batch_norm: False replaces BN with conv biases (as slim without normalizer).
        weight_decay: L2 on the pointwise kernel only (depthwise kernels are never
            regularised in the original).
        depthwise_initializer: defaults to TruncatedNormal(0.33) as the original.
        pointwise_initializer: defaults to TruncatedNormal(0.06) as the original.
        norm: :class:`NormOptions` (or its dict) of both BatchNorms.
        **kwargs: base layer arguments.

    Example:
        >>> conv = AtrousSeparableConv(256, dilation_rate=12, name="aspp2")
        >>> conv(keras.ops.ones((1, 33, 33, 2048))).shape
        (1, 33, 33, 256)

    Reference:
        Chen et al., "Encoder-Decoder with Atrous Separable Convolution for Semantic
        Image Segmentation" (DeepLabv3+), ECCV 2018.
    """

    def __init__(
        self,
        filters: int,
        kernel_size: int = 3,
        strides: int = 1,
        dilation_rate: int = 1,
        explicit_padding: bool = False,
        activation: str | None = "relu",
        activation_placement: str = "inside",
        use_batch_norm: bool = True,
        weight_decay: float = 0.0,
        depthwise_initializer=None,
        pointwise_initializer=None,
        norm: NormOptions | dict | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if activation_placement not in PLACEMENTS:
            raise ValueError(
                f"AtrousSeparableConv {self.name!r}: activation_placement must be one of "
                f"{PLACEMENTS}, got {activation_placement!r}."
            )
        self.filters = filters
        self.kernel_size = kernel_size
        self.strides = strides
        self.dilation_rate = dilation_rate
        self.explicit_padding = explicit_padding
        self.activation = check_activation(activation, f"AtrousSeparableConv {self.name!r}")
        self.activation_placement = activation_placement
        self.use_batch_norm = use_batch_norm
        self.weight_decay = weight_decay
        self.depthwise_initializer = keras.initializers.get(
            depthwise_initializer or keras.initializers.TruncatedNormal(stddev=0.33)
        )
        self.pointwise_initializer = keras.initializers.get(
            pointwise_initializer or keras.initializers.TruncatedNormal(stddev=0.06)
        )
        self.norm = NormOptions.of(norm, momentum=0.9997, epsilon=1e-5)

        inner_activation = activation if activation_placement == "inside" else None
        bn = dict(
            use_batch_norm=use_batch_norm,
            activation=inner_activation,
            norm=self.norm,
            dtype=self.dtype_policy,
        )
        self.depthwise = ConvBNAct(
            None,
            kernel_size,
            strides=strides,
            dilation_rate=dilation_rate,
            explicit_padding=explicit_padding,
            kernel_initializer=self.depthwise_initializer,
            name="depthwise",
            **bn,
        )
        self.pointwise = ConvBNAct(
            filters,
            1,
            weight_decay=weight_decay,
            kernel_initializer=self.pointwise_initializer,
            name="pointwise",
            **bn,
        )
        self.input_quantizer = None  # set by deeplab.quantization.prepare_model

    def add_quantizers(self) -> None:
        """Quantization-aware training: the activation before the depthwise conv is an op
        of its own in TFLite, with its own int8 output (the convs quantize themselves)."""
        if self.activation_placement == "before" and self.activation is not None:
            self.input_quantizer = build_in_scope(
                self, ActivationQuantizer(name="input_quantizer", dtype=self.dtype_policy))

    def build(self, input_shape):
        self.depthwise.build(input_shape)
        self.pointwise.build(self.depthwise.compute_output_shape(input_shape))

    def call(self, inputs, training=None):
        x = inputs
        if self.activation_placement == "before":
            x = apply_activation(x, self.activation)
            if self.input_quantizer is not None and is_simulating():
                x = self.input_quantizer(x, training=training)
        x = self.depthwise(x, training=training)
        return self.pointwise(x, training=training)

    def compute_output_shape(self, input_shape):
        return self.pointwise.compute_output_shape(self.depthwise.compute_output_shape(input_shape))

    def get_config(self):
        config = super().get_config()
        config.update(
            filters=self.filters,
            kernel_size=self.kernel_size,
            strides=self.strides,
            dilation_rate=self.dilation_rate,
            explicit_padding=self.explicit_padding,
            activation=self.activation,
            activation_placement=self.activation_placement,
            use_batch_norm=self.use_batch_norm,
            weight_decay=self.weight_decay,
            depthwise_initializer=keras.initializers.serialize(self.depthwise_initializer),
            pointwise_initializer=keras.initializers.serialize(self.pointwise_initializer),
            norm=self.norm.to_config(),
        )
        return config
