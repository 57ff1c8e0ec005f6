"""Conv (or depthwise conv) → BatchNorm → activation: the original's slim conv unit."""

from __future__ import annotations

import keras
import tensorflow as tf

from deeplab.layers.atrous_conv2d import AtrousConv2D
from deeplab.layers.atrous_depthwise_conv2d import AtrousDepthwiseConv2D
from deeplab.layers.norm_options import NormOptions
from deeplab.quantization import (
    add_output_quantizer,
    fake_quant_weights,
    fold_batch_norm,
    simulates,
)

# hard_swish / hard_sigmoid: MobileNetV3's (the original's q_sigmoid is hard_sigmoid).
ACTIVATIONS = ("relu", "relu6", "hard_swish", "hard_sigmoid", "sigmoid", None)


def l2_regularizer(weight_decay: float):
    """Keras regularizer equal to slim's ``l2_regularizer(weight_decay)``.

    slim adds ``wd * sum(w**2) / 2`` (``tf.nn.l2_loss``); Keras' L2(l) adds
    ``l * sum(w**2)``, hence the half.
    """
    return keras.regularizers.L2(weight_decay / 2.0) if weight_decay else None


def check_activation(activation, owner: str):
    if activation not in ACTIVATIONS:
        raise ValueError(f"{owner}: activation must be one of {ACTIVATIONS}, got {activation!r}.")
    return activation


@keras.saving.register_keras_serializable(package="deeplab")
class ConvBNAct(keras.layers.Layer):
    """One slim-style conv unit: conv without bias → BatchNorm → optional activation.

    The original configured these through ``slim.arg_scope`` (normalizer, activation,
    regularizer); here every choice is an explicit argument. Sublayers are named ``conv``
    and ``bn`` so that ``<scope>/weights`` and ``<scope>/BatchNorm/*`` of an original
    checkpoint map onto ``<layer>.conv.kernel`` and ``<layer>.bn.*``.

    Args:
        filters: output channels, or None for a depthwise conv (depth multiplier 1).
        kernel_size: int.
        strides: int.
        dilation_rate: int (atrous rate).
        explicit_padding: the original's fixed padding for strided convs.
        activation: one of ``ACTIVATIONS`` ("relu", "relu6", "hard_swish", ...) or None.
        use_batch_norm: False gives a conv with bias and no BN (as slim without a
            normalizer).
        weight_decay: slim-style L2 weight decay on the kernel (0 disables it).
        kernel_initializer: Keras initializer (name or config).
        norm: :class:`NormOptions` (or its dict) for the BatchNorm; default decay 0.9997,
            epsilon 1e-5 (the original's heads).
        **kwargs: base layer arguments (name, dtype, ...).

    Example:
        >>> unit = ConvBNAct(256, 1, name="aspp0")
        >>> unit(keras.ops.ones((1, 33, 33, 320))).shape
        (1, 33, 33, 256)
    """

    # Quantization-aware training folds the BN into the conv: the sublayers are not
    # prepared on their own (deeplab.quantization.prepare_model).
    quantized_as_one_unit = True

    def __init__(
        self,
        filters: int | None,
        kernel_size: int = 1,
        strides: int = 1,
        dilation_rate: int = 1,
        explicit_padding: bool = False,
        activation: str | None = "relu",
        use_batch_norm: bool = True,
        weight_decay: float = 0.0,
        kernel_initializer="glorot_uniform",
        norm: NormOptions | dict | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.filters = filters
        self.kernel_size = kernel_size
        self.strides = strides
        self.dilation_rate = dilation_rate
        self.explicit_padding = explicit_padding
        self.activation = check_activation(activation, f"ConvBNAct {self.name!r}")
        self.use_batch_norm = use_batch_norm
        self.weight_decay = weight_decay
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.norm = NormOptions.of(norm, momentum=0.9997, epsilon=1e-5)

        common = dict(
            kernel_size=kernel_size,
            strides=strides,
            dilation_rate=dilation_rate,
            explicit_padding=explicit_padding,
            use_bias=not use_batch_norm,
            dtype=self.dtype_policy,
            name="conv",
        )
        if filters is None:
            # The original never regularises depthwise kernels (regularize_depthwise=False).
            self.conv = AtrousDepthwiseConv2D(
                depthwise_initializer=keras.initializers.get(kernel_initializer), **common
            )
        else:
            self.conv = AtrousConv2D(
                filters,
                kernel_initializer=keras.initializers.get(kernel_initializer),
                kernel_regularizer=l2_regularizer(weight_decay),
                **common,
            )
        self.bn = None
        if use_batch_norm:
            self.bn = self.norm.batch_norm("bn", self.dtype_policy)
        self.output_quantizer = None  # set by deeplab.quantization.prepare_model

    def build(self, input_shape):
        self.conv.build(input_shape)
        if self.bn is not None:
            self.bn.build(self.conv.compute_output_shape(input_shape))

    def call(self, inputs, training=None):
        if simulates(self):
            return self._quantized_call(inputs, training)
        x = self.conv(inputs)
        if self.bn is not None:
            x = self.bn(x, training=training)
        return apply_activation(x, self.activation)

    def add_quantizers(self) -> None:
        """Quantization-aware training: range tracking for the unit's output."""
        add_output_quantizer(self)

    def _quantized_call(self, inputs, training):
        """The unit as TFLite's int8 kernel computes it: BN folded into the conv, the
        folded kernel rounded per output channel, the activated output rounded per tensor.

        While BN learns (``training`` and batch statistics), the kernel is folded with the
        moving variance, which inference will use, and the conv output is rescaled by
        ``sigma_moving / sigma_batch`` and shifted by the batch mean, so the unit still
        normalises with batch statistics, as the original's ``fold_batch_norms``
        (Jacob et al. 2018, section 3.2) did before its BN freeze.
        """
        depthwise = self.filters is None
        kernel = self.conv.kernel
        if self.bn is None:
            y = self.conv.convolution_op(inputs, fake_quant_weights(kernel, depthwise))
            y = y + tf.cast(self.conv.bias, y.dtype)
            return self.output_quantizer(apply_activation(y, self.activation), training=training)
        bn = self.bn

        def float32(value):  # the folding and rounding in float32 under mixed precision
            return tf.cast(value, tf.float32)

        gamma = float32(bn.gamma if bn.scale else tf.ones_like(bn.moving_mean))
        beta = float32(bn.beta if bn.center else tf.zeros_like(bn.moving_mean))
        # Read once: the BN call below updates the moving statistics, and the correction
        # must undo exactly the variance the kernel was folded with.
        moving_variance = float32(tf.identity(bn.moving_variance))
        folded, bias = fold_batch_norm(float32(kernel), gamma, beta, float32(bn.moving_mean),
                                       moving_variance, bn.epsilon, depthwise)
        y = self.conv.convolution_op(inputs, fake_quant_weights(folded, depthwise))
        if bn.uses_batch_statistics(training):
            unfolded = self.conv(inputs)
            bn(unfolded, training=True)  # updates the moving statistics
            mean, variance = (float32(tf.reshape(m, [-1]))
                              for m in bn._moments(unfolded, None))
            batch_sigma = tf.sqrt(variance + bn.epsilon)
            y = y * tf.cast(tf.sqrt(moving_variance + bn.epsilon) / batch_sigma, y.dtype)
            bias = beta - gamma * mean / batch_sigma
        y = y + tf.cast(bias, y.dtype)
        return self.output_quantizer(apply_activation(y, self.activation), training=training)

    def compute_output_shape(self, input_shape):
        return self.conv.compute_output_shape(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update(
            filters=self.filters,
            kernel_size=self.kernel_size,
            strides=self.strides,
            dilation_rate=self.dilation_rate,
            explicit_padding=self.explicit_padding,
            activation=self.activation,
            use_batch_norm=self.use_batch_norm,
            weight_decay=self.weight_decay,
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
            norm=self.norm.to_config(),
        )
        return config


def apply_activation(x, activation: str | None):
    """ReLU, ReLU6 (the original's ``use_bounded_activation``), MobileNetV3's hard swish
    and hard sigmoid (slim's ``x * relu6(x + 3) / 6`` and ``relu6(x + 3) * 0.16667``,
    constants as the original's), sigmoid, or identity."""
    if activation == "relu":
        return keras.ops.relu(x)
    if activation == "relu6":
        return keras.ops.relu6(x)
    if activation == "hard_swish":
        return x * keras.ops.relu6(x + 3.0) * (1.0 / 6.0)
    if activation == "hard_sigmoid":
        return keras.ops.relu6(x + 3.0) * 0.16667
    if activation == "sigmoid":
        return keras.ops.sigmoid(x)
    return x
