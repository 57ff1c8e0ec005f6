"""The DeepLab-modified aligned Xception (``core/xception.py``)."""

from __future__ import annotations

import dataclasses

import keras

from deeplab.backbones.backbone import AtrousSchedule, Backbone, check_output_stride, scope
from deeplab.layers.atrous_separable_conv import AtrousSeparableConv
from deeplab.layers.conv_bn_act import ConvBNAct
from deeplab.layers.norm_options import NormOptions
from deeplab.layers.residual_add import ResidualAdd


@dataclasses.dataclass(frozen=True)
class _Block:
    scope: str
    depths: tuple[int, int, int]
    skip: str  # "conv", "sum" or "none"
    stride: int
    units: int
    activation_inside: bool = False
    uses_multi_grid: bool = False


def _entry(scope_name, depth, stride):
    return _Block(scope_name, (depth,) * 3, "conv", stride, 1)


_MIDDLE = (728, 728, 728)
_EXIT = (
    _Block("exit_flow.block1", (728, 1024, 1024), "conv", 2, 1),
    _Block("exit_flow.block2", (1536, 1536, 2048), "none", 1, 1, True, True),
)
_ENTRY_65 = (
    _entry("entry_flow.block1", 128, 2),
    _entry("entry_flow.block2", 256, 2),
    _entry("entry_flow.block3", 728, 2),
)
_ENTRY_71 = (
    _entry("entry_flow.block1", 128, 2),
    _entry("entry_flow.block2", 256, 1),
    _entry("entry_flow.block3", 256, 2),
    _entry("entry_flow.block4", 728, 1),
    _entry("entry_flow.block5", 728, 2),
)
_SEPARABLE_CONV2 = "unit_1.xception_module.separable_conv2"
VARIANTS = {
    "xception_41": (_ENTRY_65, 8, {4: "entry_flow.block2", 8: "entry_flow.block3"}),
    "xception_65": (_ENTRY_65, 16, {4: "entry_flow.block2", 8: "entry_flow.block3"}),
    "xception_71": (_ENTRY_71, 16, {4: "entry_flow.block3", 8: "entry_flow.block5"}),
}


@keras.saving.register_keras_serializable(package="deeplab")
class Xception(Backbone):
    """Aligned Xception-41/65/71 with DeepLab's changes.

    Max pools are replaced by stride-2 separable convs (so the output stride can be set
    with atrous conv), and every depthwise conv is followed by BN. Inside a unit the
    activation comes before each separable conv (pre-activation) except in
    ``exit_flow/block2``, where it sits inside (depthwise → BN → ReLU → pointwise → BN →
    ReLU). Strided convs use the original's fixed padding.

    Args:
        variant: "xception_41", "xception_65" or "xception_71".
        output_stride: 8, 16, 32 or None (nominal 32), realised with atrous conv.
        multi_grid: unit rates of ``exit_flow/block2`` (the original's ``multi_grid``),
            default (1, 1, 1).
        weight_decay: slim-style L2 on conv kernels (depthwise kernels excluded).
        norm: :class:`NormOptions` (or its dict); default decay 0.9997, epsilon 1e-3 (the
            original's).
        use_bounded_activation: ReLU6 instead of ReLU (for quantisation).
        **kwargs: ``keras.Model`` arguments (name, ...).

    Example:
        >>> net = Xception("xception_65", output_stride=16)
        >>> net(keras.ops.zeros((1, 65, 65, 3)))["features"].shape
        (1, 5, 5, 2048)

    Reference:
        Chollet, "Xception: Deep Learning with Depthwise Separable Convolutions"; Qi et
        al., "Deformable Convolutional Networks" (aligned Xception); Chen et al.,
        DeepLabv3+ (ECCV 2018).
    """

    def __init__(
        self,
        variant: str = "xception_65",
        output_stride: int | None = 16,
        multi_grid=None,
        weight_decay: float = 4e-5,
        norm: NormOptions | dict | None = None,
        use_bounded_activation: bool = False,
        input_channels: int = 3,
        **kwargs,
    ):
        norm = NormOptions.of(norm, momentum=0.9997, epsilon=1e-3)
        if variant not in VARIANTS:
            raise ValueError(
                f"Xception: variant must be one of {sorted(VARIANTS)}, got {variant!r}."
            )
        check_output_stride(output_stride, f"Xception {variant}")
        multi_grid = tuple(multi_grid) if multi_grid else (1, 1, 1)
        if len(multi_grid) != 3:
            raise ValueError(
                f"Xception: multi_grid must have 3 entries (one per separable conv of "
                f"exit_flow/block2), got {multi_grid}."
            )
        entry, middle_units, low_level = VARIANTS[variant]
        blocks = (*entry, _Block("middle_flow.block1", _MIDDLE, "sum", 1, middle_units), *_EXIT)
        activation = "relu6" if use_bounded_activation else "relu"
        common = dict(
            norm=norm,
            weight_decay=weight_decay,
        )
        init = keras.initializers.TruncatedNormal(stddev=0.09)

        inputs = keras.Input(shape=(None, None, input_channels), name="images")
        x = ConvBNAct(
            32, 3, strides=2, explicit_padding=True, activation=activation,
            kernel_initializer=init, name="entry_flow.conv1_1", **common,
        )(inputs)
        x = ConvBNAct(
            64, 3, activation=activation, kernel_initializer=init,
            name="entry_flow.conv1_2", **common,
        )(x)
        # The root conv already has stride 2, as in the original's halved output_stride.
        schedule = AtrousSchedule(output_stride, current_stride=2)
        endpoints = {}
        for block in blocks:
            for unit in range(block.units):
                stride, rate = schedule.next_unit(block.stride)
                unit_scope = scope(block.scope, f"unit_{unit + 1}", "xception_module")
                unit_rates = multi_grid if block.uses_multi_grid else (1, 1, 1)
                inputs_to_unit = x
                residual = x
                for i in range(3):
                    residual = AtrousSeparableConv(
                        block.depths[i],
                        3,
                        strides=stride if i == 2 else 1,
                        dilation_rate=rate * unit_rates[i],
                        explicit_padding=True,
                        activation=activation,
                        activation_placement="inside" if block.activation_inside else "before",
                        depthwise_initializer=init,
                        pointwise_initializer=init,
                        name=scope(unit_scope, f"separable_conv{i + 1}"),
                        **common,
                    )(residual)
                    endpoints[scope(unit_scope, f"separable_conv{i + 1}")] = residual
                if block.skip == "conv":
                    shortcut = ConvBNAct(
                        block.depths[-1], 1, strides=stride, activation=None,
                        kernel_initializer=init, name=scope(unit_scope, "shortcut"), **common,
                    )(inputs_to_unit)
                    x = ResidualAdd(name=unit_scope)([residual, shortcut])
                elif block.skip == "sum":
                    x = ResidualAdd(name=unit_scope)([residual, inputs_to_unit])
                else:
                    x = residual
        outputs = {"features": x}
        for stride_key, block_scope in {**low_level, 16: "exit_flow.block1"}.items():
            outputs[f"stride_{stride_key}"] = endpoints[scope(block_scope, _SEPARABLE_CONV2)]
        kwargs.setdefault("name", variant)
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)
        self._config = dict(
            variant=variant,
            output_stride=output_stride,
            multi_grid=list(multi_grid),
            use_bounded_activation=use_bounded_activation,
            input_channels=input_channels,
            weight_decay=weight_decay,
            norm=norm.to_config(),
        )
        self.checkpoint_prefix = variant
