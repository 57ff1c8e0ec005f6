"""MobileNetV3 (large / small, segmentation variants) and MobileNet-EdgeTPU, as the
original's ``feature_extractor`` builds them from slim's ``mobilenet_v3`` conv defs."""

from __future__ import annotations

import dataclasses

import keras

from deeplab.backbones.backbone import AtrousSchedule, Backbone, check_output_stride
from deeplab.backbones.mobilenet_v2 import make_divisible
from deeplab.layers.conv_bn_act import ConvBNAct
from deeplab.layers.norm_options import NormOptions
from deeplab.layers.residual_add import ResidualAdd
from deeplab.layers.squeeze_excite import SqueezeExcite


@dataclasses.dataclass(frozen=True)
class Block:
    """One ``expanded_conv`` of a conv def (slim's ``mbv3_op`` / ``mbv3_fused``).

    Attributes:
        expansion: factor on the block's input channels (rounded to a multiple of 8);
            no expand conv when the result is not wider than the input.
        channels: output channels before the depth multiplier.
        kernel: depthwise kernel (fused: the expand conv's kernel).
        stride: nominal stride.
        activation: of the expand and depthwise convs.
        squeeze_excite: an SE gate after the depthwise conv.
        fused: a full k x k expand conv with the stride and no depthwise conv.
        residual: add the input when stride 1 and widths match.
    """

    expansion: float
    channels: float
    kernel: int = 3
    stride: int = 1
    activation: str = "relu"
    squeeze_excite: bool = False
    fused: bool = False
    residual: bool = True


@dataclasses.dataclass(frozen=True)
class ConvDef:
    """A whole network: stem conv, blocks, last 1x1 conv, and the decoder end points
    (``{stride: layer index}``, slim's one-based ``layer_<i>/depthwise_output``)."""

    scope: str
    stem_channels: int
    stem_activation: str
    blocks: tuple[Block, ...]
    last_channels: float
    last_activation: str
    decoder_layers: dict
    # The released EdgeTPU-slim file keeps the last conv at 1280 channels under depth
    # multiplier 0.75 (slim's "finegrain classification mode").
    last_keeps_width: bool = False


_HS, _R = "hard_swish", "relu"


def _large_seg() -> ConvDef:
    # V3_LARGE with the last block halved (layers 14-17: 160 -> 80, 960 -> 480) and the
    # expansions set to 336 / 480 / 480 (feature_extractor.mobilenet_v3_large_seg).
    blocks = (
        Block(1, 16), Block(4, 24, stride=2), Block(3, 24),
        Block(3, 40, 5, 2, _R, True), Block(3, 40, 5, 1, _R, True), Block(3, 40, 5, 1, _R, True),
        Block(6, 80, 3, 2, _HS), Block(2.5, 80, 3, 1, _HS), Block(184 / 80, 80, 3, 1, _HS),
        Block(184 / 80, 80, 3, 1, _HS),
        Block(6, 112, 3, 1, _HS, True), Block(6, 112, 3, 1, _HS, True),
        Block(336 / 112, 80, 5, 2, _HS, True), Block(480 / 80, 80, 5, 1, _HS, True),
        Block(480 / 80, 80, 5, 1, _HS, True),
    )
    return ConvDef("MobilenetV3", 16, _HS, blocks, 480, _HS, {4: 4, 8: 7, 16: 13})


def _small_seg() -> ConvDef:
    # V3_SMALL with layers 10-13 halved (96 -> 48, 576 -> 288), expansions 144 / 288 / 288.
    blocks = (
        Block(1, 16, 3, 2, _R, True), Block(72 / 16, 24, 3, 2), Block(88 / 24, 24),
        Block(4, 40, 5, 2, _HS, True), Block(6, 40, 5, 1, _HS, True),
        Block(6, 40, 5, 1, _HS, True), Block(3, 48, 5, 1, _HS, True),
        Block(3, 48, 5, 1, _HS, True),
        Block(144 / 48, 48, 5, 2, _HS, True), Block(288 / 48, 48, 5, 1, _HS, True),
        Block(288 / 48, 48, 5, 1, _HS, True),
    )
    return ConvDef("MobilenetV3", 16, _HS, blocks, 288, _HS, {4: 2, 8: 4, 16: 9})


def _edgetpu() -> ConvDef:
    fused = dict(fused=True)
    blocks = (
        Block(1, 16, **fused), Block(8, 32, stride=2, **fused),
        *(Block(4, 32, **fused) for _ in range(3)),
        Block(8, 48, stride=2, **fused), *(Block(4, 48, **fused) for _ in range(3)),
        Block(8, 96, stride=2), *(Block(4, 96) for _ in range(3)),
        Block(8, 96, residual=False), *(Block(4, 96) for _ in range(3)),
        Block(8, 160, 5, 2), *(Block(4, 160, 5) for _ in range(3)),
        Block(8, 192),
    )
    return ConvDef("MobilenetEdgeTPU", 32, _R, blocks, 1280, _R, {}, last_keeps_width=True)


CONV_DEFS = {"large_seg": _large_seg, "small_seg": _small_seg, "edgetpu": _edgetpu}


def _block_scope(index: int) -> str:
    return "expanded_conv" if index == 0 else f"expanded_conv_{index}"


@keras.saving.register_keras_serializable(package="deeplab")
class MobileNetV3(Backbone):
    """MobileNetV3-Large/Small (segmentation variants) or MobileNet-EdgeTPU.

    Inverted residual blocks (1x1 expand → k x k depthwise → optional SE gate → 1x1
    linear project; EdgeTPU's early "fused" blocks replace expand + depthwise by one
    k x k conv) with hard-swish or ReLU, SAME padding, widths rounded to multiples of 8
    (the original drops ``divisible_by`` for these). The segmentation variants halve the
    last block and end at the last 1x1 conv (``layer_17`` / ``layer_13``); EdgeTPU ends
    at ``layer_24``.

    Args:
        variant: "large_seg", "small_seg" or "edgetpu".
        output_stride: 8, 16, 32 or None; realised with atrous depthwise convs.
        depth_multiplier: width multiplier (EdgeTPU-slim: 0.75).
        weight_decay: slim-style L2 on conv kernels (depthwise excluded).
        norm: :class:`NormOptions` (or its dict); default decay 0.997, epsilon 1e-3
            (the original's ``mobilenet_v2_arg_scope``).
        **kwargs: ``keras.Model`` arguments.

    Example:
        >>> net = MobileNetV3("large_seg", output_stride=32)
        >>> net(keras.ops.zeros((1, 65, 65, 3)))["features"].shape
        (1, 3, 3, 480)

    Reference:
        Howard et al., "Searching for MobileNetV3", ICCV 2019 (LR-ASPP segmentation
        head); Gupta and Akin, "Accelerator-aware Neural Network Design using AutoML",
        2020 (MobileNet-EdgeTPU).
    """

    def __init__(
        self,
        variant: str = "large_seg",
        output_stride: int | None = 32,
        depth_multiplier: float = 1.0,
        weight_decay: float = 4e-5,
        norm: NormOptions | dict | None = None,
        input_channels: int = 3,
        **kwargs,
    ):
        if variant not in CONV_DEFS:
            raise ValueError(f"MobileNetV3: variant must be one of {sorted(CONV_DEFS)}, got "
                             f"{variant!r}.")
        check_output_stride(output_stride, "MobileNetV3")
        if depth_multiplier <= 0:
            raise ValueError(f"MobileNetV3: depth_multiplier must be > 0, got {depth_multiplier}.")
        norm = NormOptions.of(norm, momentum=0.997, epsilon=1e-3)
        conv_def = CONV_DEFS[variant]()

        def width(channels):
            return make_divisible(channels * depth_multiplier, 8)

        common = dict(norm=norm, kernel_initializer=keras.initializers.TruncatedNormal(
            stddev=0.09))
        schedule = AtrousSchedule(output_stride)
        inputs = keras.Input(shape=(None, None, input_channels), name="images")
        stride, _ = schedule.next_unit(2)
        x = ConvBNAct(width(conv_def.stem_channels), 3, strides=stride,
                      activation=conv_def.stem_activation, weight_decay=weight_decay,
                      name="Conv", **common)(inputs)
        depthwise_outputs = {}
        for index, block in enumerate(conv_def.blocks):
            layer = _block_scope(index)
            x = self._block(x, block, layer, schedule, width, weight_decay, common,
                            depthwise_outputs, slim_layer=index + 2)
        last = (conv_def.last_channels if conv_def.last_keeps_width
                else width(conv_def.last_channels))
        x = ConvBNAct(last, 1, activation=conv_def.last_activation, weight_decay=weight_decay,
                      name="Conv_1", **common)(x)
        outputs = {"features": x}
        for stride_key, slim_layer in conv_def.decoder_layers.items():
            outputs[f"stride_{stride_key}"] = depthwise_outputs[slim_layer]
        kwargs.setdefault("name", conv_def.scope)
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)
        self._config = dict(variant=variant, output_stride=output_stride,
                            depth_multiplier=depth_multiplier, weight_decay=weight_decay,
                            norm=norm.to_config(), input_channels=input_channels)
        self.checkpoint_prefix = conv_def.scope

    @staticmethod
    def _block(x, block, layer, schedule, width, weight_decay, common, depthwise_outputs,
               slim_layer):
        """slim's ``expanded_conv``: expand (if wider) → depthwise → SE → project (+ input)."""
        stride, rate = schedule.next_unit(block.stride)
        unit_input = x
        channels_in = x.shape[-1]
        inner = make_divisible(channels_in * block.expansion, 8)
        act = dict(activation=block.activation, **common)
        if block.fused:
            if inner > channels_in:
                x = ConvBNAct(inner, block.kernel, strides=stride,
                              weight_decay=weight_decay, name=f"{layer}.expand", **act)(x)
        else:
            if inner > channels_in:
                x = ConvBNAct(inner, 1, weight_decay=weight_decay, name=f"{layer}.expand",
                              **act)(x)
            x = ConvBNAct(None, block.kernel, strides=stride, dilation_rate=rate,
                          name=f"{layer}.depthwise", **act)(x)
            depthwise_outputs[slim_layer] = x
            if block.squeeze_excite:
                x = SqueezeExcite(make_divisible(x.shape[-1] / 4, 8),
                                  weight_decay=weight_decay,
                                  name=f"{layer}.squeeze_excite")(x)
        x = ConvBNAct(width(block.channels), 1, weight_decay=weight_decay,
                      name=f"{layer}.project", **{**common, "activation": None})(x)
        if block.residual and stride == 1 and x.shape[-1] == channels_in:
            x = ResidualAdd(name=layer)([x, unit_input])
        return x
