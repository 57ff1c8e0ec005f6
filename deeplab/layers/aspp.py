"""Atrous Spatial Pyramid Pooling, as built by the original's ``extract_features``."""

from __future__ import annotations

import keras
import tensorflow as tf

from deeplab.layers.atrous_separable_conv import AtrousSeparableConv
from deeplab.layers.conv_bn_act import (
    ConvBNAct,
    apply_activation,
    check_activation,
)
from deeplab.layers.norm_options import NormOptions
from deeplab.ops import resize_bilinear
from deeplab.quantization import simulates


@keras.saving.register_keras_serializable(package="deeplab")
class ASPP(keras.layers.Layer):
    """ASPP: image pooling, a 1x1 branch and one 3x3 branch per atrous rate.

    Branches are concatenated in the original's order (``image_pooling``, ``aspp0``,
    ``aspp1``, ...), projected by a 1x1 conv (``concat_projection``) and passed through
    dropout 0.1 (``keep_prob=0.9``). With ``atrous_rates=()`` it is the MobileNetV2 head
    of the original (image pooling + 1x1 only).

    Image pooling is either a true global mean (``pooling_size=None``) or, as the
    original does when a crop size is known, an average pool of ``pooling_size`` feature
    pixels with ``pooling_stride``, then an align-corners bilinear resize back to the
    feature size. The latter includes padded pixels, exactly as the original.

    With ``squeeze_and_excitation`` (MobileNetV3's LR-ASPP,
    ``--aspp_with_squeeze_and_excitation``) the image-level branch is a gate instead: its
    1x1 conv has a bias, no BN and a sigmoid (``gating``) activation, it is not
    concatenated, and it multiplies the (projected) output.

    Args:
        filters: depth of every branch and of the projection (``aspp_convs_filters``).
        atrous_rates: rates of the 3x3 branches, e.g. ``(6, 12, 18)`` at OS 16.
        separable: split separable 3x3 branches (``aspp_with_separable_conv``).
        image_pooling: add the image-level branch (``add_image_level_feature``).
        pooling_size: (h, w) average-pool kernel in feature pixels, or None for the
            global mean.
        pooling_stride: (h, w) average-pool stride (``image_pooling_stride``).
        concat_projection: 1x1 projection + dropout after the concat
            (``aspp_with_concat_projection``).
        dropout: dropout rate after the projection.
        squeeze_and_excitation: the image-level branch gates the output (LR-ASPP).
        gating: the gate's activation, "sigmoid" or "hard_sigmoid" (the original's
            ``--image_se_uses_qsigmoid``).
        activation: "relu" or "relu6" (``use_bounded_activation``).
        weight_decay: slim-style L2 on conv kernels (not depthwise).
        norm: :class:`NormOptions` (or its dict); 0.9997 / 1e-5 in the original's heads.
        **kwargs: base layer arguments.

    Example:
        >>> aspp = ASPP(256, atrous_rates=(6, 12, 18))
        >>> aspp(keras.ops.ones((1, 33, 33, 2048))).shape
        (1, 33, 33, 256)

    Reference:
        Chen et al., "Rethinking Atrous Convolution for Semantic Image Segmentation"
        (DeepLabv3), arXiv 1706.05587.
    """

    def __init__(
        self,
        filters: int = 256,
        atrous_rates=(),
        separable: bool = True,
        image_pooling: bool = True,
        pooling_size=None,
        pooling_stride=(1, 1),
        concat_projection: bool = True,
        dropout: float = 0.1,
        squeeze_and_excitation: bool = False,
        gating: str = "sigmoid",
        activation: str = "relu",
        weight_decay: float = 0.0,
        norm: NormOptions | dict | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.filters = filters
        self.atrous_rates = tuple(int(r) for r in atrous_rates or ())
        if any(r < 1 for r in self.atrous_rates):
            raise ValueError(
                f"{type(self).__name__}: atrous_rates must be positive, got {self.atrous_rates}."
            )
        self.separable = separable
        self.image_pooling = image_pooling
        self.pooling_size = tuple(pooling_size) if pooling_size else None
        self.pooling_stride = tuple(pooling_stride)
        self.concat_projection = concat_projection
        self.dropout = dropout
        self.activation = check_activation(activation, type(self).__name__)
        self.weight_decay = weight_decay
        self.norm = NormOptions.of(norm, momentum=0.9997, epsilon=1e-5)
        self.squeeze_and_excitation = squeeze_and_excitation
        self.gating = check_activation(gating, type(self).__name__)
        if squeeze_and_excitation and not image_pooling:
            raise ValueError(f"{type(self).__name__}: squeeze_and_excitation gates with the "
                             "image-level branch; it needs image_pooling=True.")

        self.pooling_branch = None
        if image_pooling and squeeze_and_excitation:
            self.pooling_branch = ConvBNAct(
                filters, 1, activation=gating, use_batch_norm=False,
                weight_decay=weight_decay, name="image_pooling", dtype=self.dtype_policy)
        elif image_pooling:
            self.pooling_branch = self._conv_unit(1, "image_pooling")
        self.aspp0 = self._conv_unit(1, "aspp0")
        self.rate_branches = self._make_rate_branches()
        self.projection = self._conv_unit(1, "concat_projection") if concat_projection else None
        self.dropout_layer = keras.layers.Dropout(dropout, dtype=self.dtype_policy)

    @property
    def quantization_aware(self) -> bool:
        """The LR-ASPP gate's multiply has no int8 range in deeplab.quantization."""
        return not self.squeeze_and_excitation

    # === Branch construction (KSAC overrides the rate branches) ===
    def _bn_kwargs(self):
        return dict(dtype=self.dtype_policy, norm=self.norm)

    def _conv_unit(self, kernel_size, name, dilation_rate=1):
        return ConvBNAct(
            self.filters,
            kernel_size,
            dilation_rate=dilation_rate,
            activation=self.activation,
            weight_decay=self.weight_decay,
            name=name,
            **self._bn_kwargs(),
        )

    def _make_rate_branches(self):
        branches = []
        for i, rate in enumerate(self.atrous_rates, start=1):
            if self.separable:
                branches.append(
                    AtrousSeparableConv(
                        self.filters,
                        3,
                        dilation_rate=rate,
                        activation=self.activation,
                        weight_decay=self.weight_decay,
                        name=f"aspp{i}",
                        **self._bn_kwargs(),
                    )
                )
            else:
                branches.append(self._conv_unit(3, f"aspp{i}", dilation_rate=rate))
        return branches

    def _build_rate_branches(self, input_shape):
        for branch in self.rate_branches:
            branch.build(input_shape)

    def _apply_rate_branches(self, inputs, training):
        return [branch(inputs, training=training) for branch in self.rate_branches]

    def _num_concat_branches(self):
        return len(self.rate_branches)

    # === Keras API ===
    def build(self, input_shape):
        channels_in = input_shape[-1]
        branch_shape = (*input_shape[:-1], channels_in)
        if self.pooling_branch is not None:
            self.pooling_branch.build((input_shape[0], None, None, channels_in))
        self.aspp0.build(branch_shape)
        self._build_rate_branches(branch_shape)
        if self.projection is not None:
            self.projection.build((*input_shape[:-1], self._concat_channels()))

    def _concat_channels(self):
        """Channels of the concat: aspp0, the rate branches and (unless it gates) the
        image-level branch."""
        concatenated = self.pooling_branch is not None and not self.squeeze_and_excitation
        return (1 + self._num_concat_branches() + int(concatenated)) * self.filters

    def call(self, inputs, training=None, pooling_size=None):
        """``pooling_size`` overrides the layer's image-pooling kernel for this call (the
        original scales it with the input in its image pyramid)."""
        pooled = None
        if self.pooling_branch is not None:
            pooled = self._image_pooling(inputs, training, pooling_size or self.pooling_size)
        outputs = [self.aspp0(inputs, training=training)]
        outputs.extend(self._apply_rate_branches(inputs, training))
        if self.squeeze_and_excitation:
            x = outputs[0] if len(outputs) == 1 else tf.concat(outputs, axis=-1)
            if self.projection is not None:
                x = self.dropout_layer(self.projection(x, training=training),
                                       training=training)
            return x * resize_bilinear(pooled, tf.shape(inputs)[1:3])
        # Quantization-aware: the concat form, whose int8 ops TFLite has.
        if (self.projection is not None and _is_single_pixel(pooled)
                and not simulates(self.projection)):
            x = self._project_with_image_bias(outputs, pooled, training)
            return self.dropout_layer(x, training=training)
        if pooled is not None:
            outputs.insert(0, resize_bilinear(pooled, tf.shape(inputs)[1:3]))
        x = tf.concat(outputs, axis=-1)
        if self.projection is not None:
            x = self.projection(x, training=training)
            x = self.dropout_layer(x, training=training)
        return x

    def _image_pooling(self, inputs, training, pooling_size):
        """The image-level branch before its resize to the feature size."""
        if pooling_size is None:
            pooled = tf.reduce_mean(inputs, axis=[1, 2], keepdims=True)
        else:
            _check_pool_fits(pooling_size, inputs.shape[1:3], self.name)
            pooled = tf.nn.avg_pool2d(
                inputs, ksize=pooling_size, strides=self.pooling_stride, padding="VALID"
            )
        return self.pooling_branch(pooled, training=training)

    def _project_with_image_bias(self, branches, pooled, training):
        """``concat_projection`` of [resize(pooled), *branches] without the concat.

        A 1x1 pooled map resizes to a constant, so its share of the 1x1 projection is a
        per-image bias: ``W·[p; b] = W_p·p + W_b·b``. This skips the resize and the
        concat and saves (H·W − 1)·F² multiply-adds (2.6 % of MobileNetV2 DeepLabv3 at
        513, 8 % of the float TFLite latency at 257); the weights are unchanged.
        """
        unit = self.projection
        # The projection's ops keep its name scope (per-layer cost reports).
        with tf.name_scope(unit.name):
            kernel = tf.cast(unit.conv.kernel, branches[0].dtype)
            # Input channels in concat order: the pooled branch's come first.
            pooled_kernel = kernel[:, :, : self.filters]
            branch_kernel = kernel[:, :, self.filters :]
            rest = branches[0] if len(branches) == 1 else tf.concat(branches, axis=-1)
            x = tf.nn.conv2d(rest, branch_kernel, 1, "VALID")
            bias = tf.nn.conv2d(pooled, pooled_kernel, 1, "VALID")
            if unit.bn.uses_batch_statistics(training):
                x = unit.bn(x + bias, training=training)
            else:
                # BN is affine here: BN(x + bias) = BN(x) + slope·bias, which lets the
                # converter fold BN into the big conv and leaves one broadcast add.
                x = unit.bn(x, training=False) + bias * tf.cast(unit.bn.slope(), bias.dtype)
            return apply_activation(x, unit.activation)

    def compute_output_shape(self, input_shape):
        if self.projection is not None:
            return (*input_shape[:-1], self.filters)
        return (*input_shape[:-1], self._concat_channels())

    def get_config(self):
        config = super().get_config()
        config.update(
            filters=self.filters,
            atrous_rates=list(self.atrous_rates),
            separable=self.separable,
            image_pooling=self.image_pooling,
            pooling_size=list(self.pooling_size) if self.pooling_size else None,
            pooling_stride=list(self.pooling_stride),
            concat_projection=self.concat_projection,
            dropout=self.dropout,
            squeeze_and_excitation=self.squeeze_and_excitation,
            gating=self.gating,
            activation=self.activation,
            weight_decay=self.weight_decay,
            norm=self.norm.to_config(),
        )
        return config


def _is_single_pixel(pooled) -> bool:
    return pooled is not None and tuple(pooled.shape[1:3]) == (1, 1)


def _check_pool_fits(pooling_size, feature_size, name):
    """The original's crop-sized pool fails on smaller maps; say why instead of a TF error."""
    for kernel, size in zip(pooling_size, feature_size):
        if size is not None and kernel > size:
            raise ValueError(
                f"{name}: image-pooling kernel {tuple(pooling_size)} is larger than the "
                f"feature map {tuple(feature_size)}: the input is smaller than the crop the "
                "pooling was sized from; give --crop_size (or --image_pooling_crop_size) no "
                "larger than the input (ModelConfig.crop_size in Python)"
            )
