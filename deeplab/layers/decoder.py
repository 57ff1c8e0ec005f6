"""The DeepLabv3+ decoder (``model.refine_by_decoder``), single- or multi-level."""

from __future__ import annotations

import keras
import tensorflow as tf

from deeplab.layers.atrous_separable_conv import AtrousSeparableConv
from deeplab.layers.conv_bn_act import ConvBNAct, check_activation
from deeplab.layers.norm_options import NormOptions
from deeplab.ops import resize_bilinear


@keras.saving.register_keras_serializable(package="deeplab")
class Decoder(keras.layers.Layer):
    """Refines encoder features with one or more low-level backbone features.

    For each low-level feature (ordered from the coarsest stride to the finest, as the
    original's descending ``decoder_output_stride`` list): a 1x1 projection to
    ``projection_filters`` (48) + BN + ReLU (``feature_projection0``), the running
    features resized (bilinear, align corners) to the low-level size, concat
    [features, projection], then two 3x3 convs of ``filters`` (256) channels
    (``decoder_conv0``, ``decoder_conv1``), separable by default. Stages after the first
    get the suffix ``_1``, ``_2``, ... as in the original's multi-level decoder.

    Sum merge (MobileNetV3's LR-ASPP, ``--decoder_use_sum_merge``) projects the
    low-level features to ``filters`` channels and adds one conv of the resized running
    features (``decoder_conv0``, or ``decoder_split_sep_conv0`` when separable). With
    ``output_is_logits`` both are 1x1 convs with biases and no BN or activation, and the
    sum is the model's logits (``--decoder_output_is_logits``; ``filters`` = classes).

    The original resized to ``scale_dimension(crop_size, 1/stride)``; for crop sizes of
    the form ``k * stride + 1`` that equals the low-level feature size used here, which
    also works for inputs of any size.

    Args:
        num_levels: number of low-level inputs (stages).
        filters: decoder conv depth (``decoder_filters``).
        projection_filters: low-level projection depth (48).
        separable: split separable 3x3 convs (``decoder_use_separable_conv``).
        sum_merge: add instead of concat (``decoder_use_sum_merge``).
        output_is_logits: sum merge with linear 1x1 convs whose sum is the logits.
        activation: "relu" or "relu6".
        weight_decay: slim-style L2 on conv kernels (not depthwise).
        norm: :class:`NormOptions` (or its dict); 0.9997 / 1e-5 in the original.
        **kwargs: base layer arguments.

    Call arguments:
        inputs: ``[encoder_features, low_level_1, ..., low_level_n]``.

    Example:
        >>> decoder = Decoder(num_levels=1)
        >>> decoder([keras.ops.ones((1, 33, 33, 256)), keras.ops.ones((1, 129, 129, 24))]).shape
        (1, 129, 129, 256)

    Reference:
        Chen et al., "Encoder-Decoder with Atrous Separable Convolution for Semantic
        Image Segmentation" (DeepLabv3+), ECCV 2018.
    """

    # Checkpoint scopes: decoder/feature_projection0, decoder/decoder_conv0_depthwise, ...
    original_scope_prefix = "decoder/"

    def __init__(
        self,
        num_levels: int = 1,
        filters: int = 256,
        projection_filters: int = 48,
        separable: bool = True,
        sum_merge: bool = False,
        output_is_logits: bool = False,
        activation: str = "relu",
        weight_decay: float = 0.0,
        norm: NormOptions | dict | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if num_levels < 1:
            raise ValueError(f"Decoder: num_levels must be >= 1, got {num_levels}.")
        if output_is_logits and not sum_merge:
            raise ValueError("Decoder: output_is_logits needs sum_merge=True (the original's "
                             "--decoder_output_is_logits is an LR-ASPP sum-merge option).")
        self.sum_merge = sum_merge
        self.output_is_logits = output_is_logits
        if sum_merge:
            projection_filters = filters  # the original: the two summands match
        self.num_levels = num_levels
        self.filters = filters
        self.projection_filters = projection_filters
        self.separable = separable
        self.activation = check_activation(activation, "Decoder")
        self.weight_decay = weight_decay
        self.norm = NormOptions.of(norm, momentum=0.9997, epsilon=1e-5)

        common = dict(
            activation=activation,
            weight_decay=weight_decay,
            dtype=self.dtype_policy,
            norm=self.norm,
        )
        if output_is_logits:
            common.update(activation=None, use_batch_norm=False)
        self.projections = []
        self.convs = []
        for level in range(num_levels):
            suffix = "" if level == 0 else f"_{level}"
            self.projections.append(
                ConvBNAct(projection_filters, 1, name=f"feature_projection0{suffix}", **common)
            )
            if sum_merge:
                self.convs.append(self._sum_merge_conv(suffix, common))
                continue
            for i in range(2):
                name = f"decoder_conv{i}{suffix}"
                if separable:
                    self.convs.append(AtrousSeparableConv(filters, 3, name=name, **common))
                else:
                    self.convs.append(ConvBNAct(filters, 3, name=name, **common))

    @property
    def quantization_aware(self) -> bool:
        """The sum merge's add has no int8 range in deeplab.quantization."""
        return not self.sum_merge

    def _sum_merge_conv(self, suffix, common):
        if self.output_is_logits:
            return ConvBNAct(self.filters, 1, name=f"decoder_conv0{suffix}", **common)
        if self.separable:
            return AtrousSeparableConv(self.filters, 3, name=f"decoder_split_sep_conv0{suffix}",
                                       **common)
        return ConvBNAct(self.filters, 3, name=f"decoder_conv0{suffix}", **common)

    def build(self, input_shape):
        if len(input_shape) != self.num_levels + 1:
            raise ValueError(
                f"Decoder expects [features, {self.num_levels} low-level feature(s)], got "
                f"{len(input_shape)} inputs."
            )
        channels = input_shape[0][-1]
        for level in range(self.num_levels):
            low_shape = input_shape[level + 1]
            self.projections[level].build(low_shape)
            if self.sum_merge:
                self.convs[level].build((*low_shape[:-1], channels))
            else:
                merged = (*low_shape[:-1], channels + self.projection_filters)
                self.convs[2 * level].build(merged)
                self.convs[2 * level + 1].build((*low_shape[:-1], self.filters))
            channels = self.filters

    def call(self, inputs, training=None):
        x = inputs[0]
        for level in range(self.num_levels):
            low = inputs[level + 1]
            projected = self.projections[level](low, training=training)
            x = resize_bilinear(x, tf.shape(low)[1:3])
            if self.sum_merge:
                x = self.convs[level](x, training=training) + projected
                continue
            x = tf.concat([x, projected], axis=-1)
            x = self.convs[2 * level](x, training=training)
            x = self.convs[2 * level + 1](x, training=training)
        return x

    def compute_output_shape(self, input_shape):
        return (*input_shape[-1][:-1], self.filters)

    def get_config(self):
        config = super().get_config()
        config.update(
            num_levels=self.num_levels,
            filters=self.filters,
            projection_filters=self.projection_filters,
            separable=self.separable,
            sum_merge=self.sum_merge,
            output_is_logits=self.output_is_logits,
            activation=self.activation,
            weight_decay=self.weight_decay,
            norm=self.norm.to_config(),
        )
        return config
