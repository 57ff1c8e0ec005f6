"""ResNet-v1 50/101 and their ``_beta`` variants (``core/resnet_v1_beta.py``)."""

from __future__ import annotations

import keras

from deeplab.backbones.backbone import AtrousSchedule, Backbone, check_output_stride, scope
from deeplab.layers.conv_bn_act import ConvBNAct
from deeplab.layers.norm_options import NormOptions
from deeplab.layers.residual_add import ResidualAdd

# Units of block1..block3 (block4 has one unit per multi-grid entry).
_DEPTHS = {50: (3, 4, 6), 101: (3, 4, 23)}
_BASE_DEPTHS = (64, 128, 256)
# The decoder reads conv3 of the last unit before each block's stride.
_LOW_LEVEL = {
    50: {4: "block1.unit_2", 8: "block2.unit_3", 16: "block3.unit_5"},
    101: {4: "block1.unit_2", 8: "block2.unit_3", 16: "block3.unit_22"},
}


@keras.saving.register_keras_serializable(package="deeplab")
class ResNetV1(Backbone):
    """ResNet-v1 bottleneck network as DeepLab builds it.

    The stride of each of block1..block3 sits on its last unit; block4 keeps stride 1
    and has one unit per ``multi_grid`` entry, with rate ``rate * multi_grid[i]``. The
    ``beta`` root replaces the 7x7 conv with three 3x3 convs (64, 64, 128). An HDC
    schedule (Wang et al.) can replace the uniform rates of block3 / block4.

    Args:
        depth: 50 or 101.
        beta: the 3x3 stem of ``resnet_v1_{50,101}_beta``.
        output_stride: 8, 16, 32 or None (nominal 32).
        multi_grid: block4 unit rates; default (1, 1, 1) as the original (whose released
            ``_beta`` checkpoints were trained with (1, 2, 4)).
        unit_rates: optional HDC schedule, e.g. ``{"block3": (1, 2, 5, 9),
            "block4": (5, 9, 17)}``: absolute rates for the units of a block (cycled
            when shorter than the block). The block must run entirely at the output stride
            (block3 needs output_stride 16 or 8).
        weight_decay: slim-style L2 (1e-4 for ResNet in the original).
        norm: :class:`NormOptions` (or its dict); default decay 0.95, epsilon 1e-5 (the
            original's resnet arg scope).
        use_bounded_activation: ReLU6 instead of ReLU.
        **kwargs: ``keras.Model`` arguments.

    Example:
        >>> net = ResNetV1(50, beta=True, output_stride=16)
        >>> net(keras.ops.zeros((1, 321, 321, 3)))["features"].shape
        (1, 21, 21, 2048)

    Reference:
        He et al., "Deep Residual Learning for Image Recognition", CVPR 2016.
    """

    def __init__(
        self,
        depth: int = 50,
        beta: bool = False,
        output_stride: int | None = 16,
        multi_grid=None,
        unit_rates=None,
        weight_decay: float = 1e-4,
        norm: NormOptions | dict | None = None,
        use_bounded_activation: bool = False,
        input_channels: int = 3,
        **kwargs,
    ):
        norm = NormOptions.of(norm, momentum=0.95, epsilon=1e-5)
        if depth not in _DEPTHS:
            raise ValueError(f"ResNetV1: depth must be one of {sorted(_DEPTHS)}, got {depth}.")
        name = f"resnet_v1_{depth}" + ("_beta" if beta else "")
        check_output_stride(output_stride, name)
        multi_grid = tuple(multi_grid) if multi_grid else (1, 1, 1)
        unit_rates = {k: tuple(v) for k, v in (unit_rates or {}).items()}
        unknown = set(unit_rates) - {"block3", "block4"}
        if unknown:
            raise ValueError(
                f"{name}: unit_rates takes 'block3' and/or 'block4', got {sorted(unknown)}."
            )
        activation = "relu6" if use_bounded_activation else "relu"
        common = dict(
            weight_decay=weight_decay,
            norm=norm,
            kernel_initializer=keras.initializers.HeNormal(),
        )

        inputs = keras.Input(shape=(None, None, input_channels), name="images")
        if beta:
            x = ConvBNAct(64, 3, strides=2, explicit_padding=True, activation=activation,
                          name="conv1_1", **common)(inputs)
            x = ConvBNAct(64, 3, activation=activation, name="conv1_2", **common)(x)
            x = ConvBNAct(128, 3, activation=activation, name="conv1_3", **common)(x)
        else:
            x = ConvBNAct(64, 7, strides=2, explicit_padding=True, activation=activation,
                          name="conv1", **common)(inputs)
        x = keras.layers.MaxPooling2D(3, strides=2, padding="same", name="pool1")(x)

        blocks = [
            (f"block{i + 1}", [(base * 4, base, 1)] * (units - 1) + [(base * 4, base, 2)])
            for i, (base, units) in enumerate(zip(_BASE_DEPTHS, _DEPTHS[depth]))
        ]
        blocks.append(("block4", [(2048, 512, 1)] * len(multi_grid)))
        schedule = AtrousSchedule(output_stride, current_stride=4)
        conv3_outputs = {}
        for block_name, units in blocks:
            for i, (unit_depth, bottleneck_depth, nominal_stride) in enumerate(units):
                stride, rate = schedule.next_unit(nominal_stride)
                if block_name == "block4":
                    rate *= multi_grid[i]
                if block_name in unit_rates:
                    if stride != 1 or schedule.current_stride != output_stride:
                        raise ValueError(
                            f"{name}: unit_rates for {block_name} need the whole block to run "
                            f"at the output stride (no stride left in it); output_stride "
                            f"{output_stride} keeps one. Use a smaller output_stride (16 or 8)."
                        )
                    schedule_rates = unit_rates[block_name]
                    rate = schedule_rates[i % len(schedule_rates)]
                unit_scope = scope(block_name, f"unit_{i + 1}", "bottleneck_v1")
                x, conv3 = _bottleneck(
                    x, unit_depth, bottleneck_depth, stride, rate, unit_scope, activation, common
                )
                conv3_outputs[scope(block_name, f"unit_{i + 1}")] = conv3
        outputs = {"features": x}
        for stride_key, unit in _LOW_LEVEL[depth].items():
            outputs[f"stride_{stride_key}"] = conv3_outputs[unit]
        kwargs.setdefault("name", name)
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)
        self._config = dict(
            depth=depth,
            beta=beta,
            output_stride=output_stride,
            multi_grid=list(multi_grid),
            unit_rates={k: list(v) for k, v in unit_rates.items()},
            use_bounded_activation=use_bounded_activation,
            input_channels=input_channels,
            weight_decay=weight_decay,
            norm=norm.to_config(),
        )
        # The original's checkpoints name the beta variants' scope without "_beta"
        # (feature_extractor's name_scope: resnet_v1_101_beta -> resnet_v1_101).
        self.checkpoint_prefix = f"resnet_v1_{depth}"


def _bottleneck(x, depth, bottleneck_depth, stride, rate, unit_scope, activation, common):
    """The original's ``bottleneck``: returns (unit output, conv3 output)."""
    if x.shape[-1] == depth:
        # slim's subsample: a 1x1 max pool with the unit's stride.
        shortcut = x if stride == 1 else keras.layers.MaxPooling2D(
            1, strides=stride, name=scope(unit_scope, "shortcut")
        )(x)
    else:
        shortcut = ConvBNAct(depth, 1, strides=stride, activation=None,
                             name=scope(unit_scope, "shortcut"), **common)(x)
    residual = ConvBNAct(bottleneck_depth, 1, activation=activation,
                         name=scope(unit_scope, "conv1"), **common)(x)
    residual = ConvBNAct(bottleneck_depth, 3, strides=stride, dilation_rate=rate,
                         explicit_padding=True, activation=activation,
                         name=scope(unit_scope, "conv2"), **common)(residual)
    conv3 = ConvBNAct(depth, 1, activation=None, name=scope(unit_scope, "conv3"), **common)(
        residual
    )
    out = ResidualAdd(activation=activation, name=unit_scope)([shortcut, conv3])
    return out, conv3
