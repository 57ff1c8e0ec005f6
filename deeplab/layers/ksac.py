"""Kernel-Sharing Atrous Convolution: ASPP whose atrous branches share one kernel."""

from __future__ import annotations

import keras
import tensorflow as tf

from deeplab.layers.aspp import ASPP
from deeplab.layers.conv_bn_act import apply_activation, l2_regularizer
from deeplab.ops import conv2d, depthwise_conv2d

MERGES = ("concat", "sum")


@keras.saving.register_keras_serializable(package="deeplab")
class KSAC(ASPP):
    """ASPP with ONE 3x3 kernel applied at every atrous rate.

    The image-pooling branch, the 1x1 branch, the projection and the dropout are those
    of :class:`ASPP`; the atrous branches are replaced by a single kernel variable
    ``ksac_kernel`` (3x3xCinxfilters) run with each dilation, so parameters do not grow
    with the number of rates: with Cin 2048 and rates (6, 12, 18) the conv weights of
    branches + projection are 6,094,848 against ASPP's 15,532,032.

    The paper's body was not available (papers.md §1.3, §8): the defaults are a
    separate BatchNorm per rate (responses at different rates have different
    statistics) and concat merge, a drop-in replacement for ASPP. ``shared_batch_norm``
    and ``merge="sum"`` select the alternatives seen in public re-implementations.

    Args:
        filters: depth of every branch.
        atrous_rates: the rates at which the shared kernel is applied (non-empty).
        separable: share a depthwise 3x3 kernel and a pointwise 1x1 kernel instead of a
            regular 3x3 kernel (each followed by BN + activation).
        shared_batch_norm: one BatchNorm for all rates instead of one per rate.
        merge: "concat" (each rate is a separate branch of the concat) or "sum" (the
            rate outputs are summed into one branch).
        **kwargs: the remaining :class:`ASPP` arguments.

    Example:
        >>> ksac = KSAC(256, atrous_rates=(6, 12, 18), separable=False)
        >>> ksac(keras.ops.ones((1, 33, 33, 320))).shape
        (1, 33, 33, 256)

    Reference:
        Huang et al., "See More Than Once: Kernel-Sharing Atrous Convolution for
        Semantic Segmentation", arXiv 1908.09443.
    """

    def __init__(
        self,
        filters: int = 256,
        atrous_rates=(6, 12, 18),
        separable: bool = False,
        shared_batch_norm: bool = False,
        merge: str = "concat",
        **kwargs,
    ):
        if not atrous_rates:
            raise ValueError(
                "KSAC: atrous_rates must name at least one rate (e.g. (6, 12, 18) at output "
                "stride 16); with no rates use ASPP (head='aspp')."
            )
        if merge not in MERGES:
            raise ValueError(f"KSAC: merge must be one of {MERGES}, got {merge!r}.")
        self.shared_batch_norm = shared_batch_norm
        self.merge = merge
        super().__init__(filters, atrous_rates=atrous_rates, separable=separable, **kwargs)

    def _make_rate_branches(self):
        # One BatchNorm per rate (or one shared) after the shared conv, and in the
        # separable form also after the shared depthwise conv.
        count = 1 if self.shared_batch_norm else len(self.atrous_rates)
        self.conv_norms = [self._norm(f"ksac_bn{i}") for i in range(count)]
        self.depthwise_norms = []
        if self.separable:
            self.depthwise_norms = [self._norm(f"ksac_depthwise_bn{i}") for i in range(count)]
        return []

    def _norm(self, name):
        return self.norm.batch_norm(name, self.dtype_policy)

    def _num_concat_branches(self):
        return 1 if self.merge == "sum" else len(self.atrous_rates)

    def _build_rate_branches(self, input_shape):
        channels_in = input_shape[-1]
        regularizer = l2_regularizer(self.weight_decay)
        if self.separable:
            self.depthwise_kernel = self.add_weight(
                name="ksac_depthwise_kernel",
                shape=(3, 3, channels_in, 1),
                initializer=keras.initializers.TruncatedNormal(stddev=0.33),
            )
            self.kernel = self.add_weight(
                name="ksac_pointwise_kernel",
                shape=(1, 1, channels_in, self.filters),
                initializer=keras.initializers.TruncatedNormal(stddev=0.06),
                regularizer=regularizer,
            )
        else:
            self.kernel = self.add_weight(
                name="ksac_kernel",
                shape=(3, 3, channels_in, self.filters),
                initializer="glorot_uniform",
                regularizer=regularizer,
            )
        for norm in self.depthwise_norms:
            norm.build((*input_shape[:-1], channels_in))
        for norm in self.conv_norms:
            norm.build((*input_shape[:-1], self.filters))

    def _apply_rate_branches(self, inputs, training):
        dtype = inputs.dtype
        outputs = []
        for i, rate in enumerate(self.atrous_rates):
            norm_index = 0 if self.shared_batch_norm else i
            if self.separable:
                x = depthwise_conv2d(inputs, tf.cast(self.depthwise_kernel, dtype),
                                     dilations=(rate, rate))
                x = self.depthwise_norms[norm_index](x, training=training)
                x = apply_activation(x, self.activation)
                x = tf.nn.conv2d(x, tf.cast(self.kernel, dtype), 1, "SAME")
                x = self.conv_norms[norm_index](x, training=training)
            else:
                x = conv2d(inputs, tf.cast(self.kernel, dtype), dilations=(rate, rate))
                x = self.conv_norms[norm_index](x, training=training)
            outputs.append(apply_activation(x, self.activation))
        if self.merge == "sum":
            return [tf.add_n(outputs)]
        return outputs

    def get_config(self):
        config = super().get_config()
        config.update(shared_batch_norm=self.shared_batch_norm, merge=self.merge)
        return config
