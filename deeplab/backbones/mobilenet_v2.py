"""MobileNetV2 as the original's ``mobilenet_v2.mobilenet_base`` (ends at layer_18)."""

from __future__ import annotations

import keras

from deeplab.backbones.backbone import AtrousSchedule, Backbone, check_output_stride
from deeplab.layers.conv_bn_act import ConvBNAct
from deeplab.layers.norm_options import NormOptions
from deeplab.layers.residual_add import ResidualAdd

# (expansion t, channels c, stride s) of expanded_conv, expanded_conv_1 ... _16.
_EXPANDED_CONVS = (
    (1, 16, 1),
    (6, 24, 2), (6, 24, 1),
    (6, 32, 2), (6, 32, 1), (6, 32, 1),
    (6, 64, 2), (6, 64, 1), (6, 64, 1), (6, 64, 1),
    (6, 96, 1), (6, 96, 1), (6, 96, 1),
    (6, 160, 2), (6, 160, 1), (6, 160, 1),
    (6, 320, 1),
)
# Decoder end points: layer_4 / layer_7 / layer_14 depthwise outputs.
_LOW_LEVEL = {4: 4, 8: 7, 16: 14}
LAST_LAYER = 18


def make_divisible(value: float, divisor: int, min_value: int | None = None) -> int:
    """slim's ``_make_divisible``: round to a multiple of ``divisor``, never below 90 %."""
    min_value = divisor if min_value is None else min_value
    new_value = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if new_value < 0.9 * value:
        new_value += divisor
    return int(new_value)


def _layer_scope(index: int) -> str:
    """Scope of slim's layer_<index>: Conv, expanded_conv, expanded_conv_1, ..."""
    if index == 1:
        return "Conv"
    return "expanded_conv" if index == 2 else f"expanded_conv_{index - 2}"


@keras.saving.register_keras_serializable(package="deeplab")
class MobileNetV2(Backbone):
    """MobileNetV2 feature extractor with atrous output stride control.

    Inverted residual units (1x1 expand → 3x3 depthwise → 1x1 linear project) with
    ReLU6, SAME padding for strided convs (the original did not use explicit padding
    here) and the slim depth rounding (``divisible_by``; expansion widths are always
    rounded to 8). The 1280-channel ``layer_19`` is excluded, as in DeepLab.

    Args:
        output_stride: 8, 16, 32 or None; realised with atrous depthwise convs.
        depth_multiplier: width multiplier (1.0, 0.5, ...).
        divisible_by: channel rounding; default 8 when depth_multiplier is 1.0, else 1
            (the original's default).
        final_layer: last slim layer to build (18 = ``layer_18``, 320 channels; smaller
            values give the truncated variants some released TFLite files use).
        weight_decay: slim-style L2 on conv kernels (depthwise excluded).
        norm: :class:`NormOptions` (or its dict); default decay 0.997, epsilon 1e-3 (the
            original's).
        **kwargs: ``keras.Model`` arguments.

    Example:
        >>> net = MobileNetV2(output_stride=16)
        >>> net(keras.ops.zeros((1, 65, 65, 3)))["features"].shape
        (1, 5, 5, 320)

    Reference:
        Sandler et al., "MobileNetV2: Inverted Residuals and Linear Bottlenecks",
        CVPR 2018.
    """

    def __init__(
        self,
        output_stride: int | None = 16,
        depth_multiplier: float = 1.0,
        divisible_by: int | None = None,
        final_layer: int = LAST_LAYER,
        weight_decay: float = 4e-5,
        norm: NormOptions | dict | None = None,
        input_channels: int = 3,
        **kwargs,
    ):
        norm = NormOptions.of(norm, momentum=0.997, epsilon=1e-3)
        check_output_stride(output_stride, "MobileNetV2")
        if not 2 <= final_layer <= LAST_LAYER:
            raise ValueError(f"MobileNetV2: final_layer must be in [2, 18], got {final_layer}.")
        if depth_multiplier <= 0:
            raise ValueError(f"MobileNetV2: depth_multiplier must be > 0, got {depth_multiplier}.")
        if divisible_by is None:
            divisible_by = 8 if depth_multiplier == 1.0 else 1
        min_depth = 8 if depth_multiplier == 1.0 else 1

        def width(channels):
            return make_divisible(channels * depth_multiplier, divisible_by, min_depth)

        common = dict(
            activation="relu6",
            norm=norm,
            kernel_initializer=keras.initializers.TruncatedNormal(stddev=0.09),
        )
        schedule = AtrousSchedule(output_stride)
        inputs = keras.Input(shape=(None, None, input_channels), name="images")
        stride, _ = schedule.next_unit(2)
        x = ConvBNAct(width(32), 3, strides=stride, weight_decay=weight_decay, name="Conv",
                      **common)(inputs)
        depthwise_outputs = {}
        for index in range(2, final_layer + 1):
            expansion, channels, nominal_stride = _EXPANDED_CONVS[index - 2]
            stride, rate = schedule.next_unit(nominal_stride)
            layer = _layer_scope(index)
            unit_input = x
            channels_in = x.shape[-1]
            if expansion > 1:
                x = ConvBNAct(
                    make_divisible(channels_in * expansion, 8), 1, weight_decay=weight_decay,
                    name=f"{layer}.expand", **common,
                )(x)
            x = ConvBNAct(
                None, 3, strides=stride, dilation_rate=rate, name=f"{layer}.depthwise", **common
            )(x)
            depthwise_outputs[index] = x
            x = ConvBNAct(
                width(channels), 1, weight_decay=weight_decay, name=f"{layer}.project",
                **{**common, "activation": None},
            )(x)
            if stride == 1 and x.shape[-1] == channels_in:
                x = ResidualAdd(name=layer)([x, unit_input])
        outputs = {"features": x}
        for stride_key, index in _LOW_LEVEL.items():
            if index <= final_layer:
                outputs[f"stride_{stride_key}"] = depthwise_outputs[index]
        kwargs.setdefault("name", "MobilenetV2")
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)
        self._config = dict(
            output_stride=output_stride,
            depth_multiplier=depth_multiplier,
            divisible_by=divisible_by,
            final_layer=final_layer,
            weight_decay=weight_decay,
            norm=norm.to_config(),
            input_channels=input_channels,
        )
        self.checkpoint_prefix = "MobilenetV2"
