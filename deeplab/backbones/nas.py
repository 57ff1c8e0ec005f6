"""The NAS backbones of the original: PNASNet-5 (``nas_pnasnet``) and Auto-DeepLab's
HNASNet (``nas_hnasnet``), as ``core/nas_network.py`` builds them."""

from __future__ import annotations

import keras

from deeplab.backbones.backbone import Backbone, check_output_stride
from deeplab.backbones.nas_cell import HNAS, PNAS, CellBuilder, Genotype
from deeplab.layers.drop_path import DropPathSchedule
from deeplab.layers.norm_options import NormOptions
from deeplab.layers.resize_like import ResizeLike

GENOTYPES = {"pnas": PNAS, "hnas": HNAS}
# Each cell's level: 0..3 is output stride 4, 8, 16, 32.
PNAS_LEVELS = {8: (1,) * 12, 16: (1,) * 4 + (2,) * 8, 32: (1,) * 4 + (2,) * 4 + (3,) * 4}
HNAS_LEVELS = (0, 0, 0, 1, 2, 1, 2, 2, 3, 3, 2, 1)
# The original's decoder end points (feature_extractor.networks_to_feature_maps).
DECODER_END_POINTS = {"pnasnet": {4: "Stem", 8: "Cell_3", 16: "Cell_7"},
                      "hnasnet": {4: "Cell_2", 8: "Cell_5", 16: "Cell_7"}}
HEAD_FILTERS = {8: 256, 16: 512, 32: 1024}  # classification head, per output stride


@keras.saving.register_keras_serializable(package="deeplab")
class NASNetwork(Backbone):
    """A NAS-searched network of cells over a stem of three 3x3 convs.

    Cells run at the output stride their level gives; going up a level the first operations
    on the cell's inputs are strided and the filters double, going down a level the input
    is resized up (align corners) and the filters halve. Every operation but ``none`` ends
    in scheduled drop path (:class:`~deeplab.layers.drop_path.DropPath`), set by the trainer
    from ``--drop_path_keep_prob``.

    Args:
        variant: "pnasnet" (PNASNet-5 cells, levels from ``output_stride``) or "hnasnet"
            (Auto-DeepLab's cell and its searched levels, ending at output stride 8).
        output_stride: 8, 16 or 32 for pnasnet; hnasnet's cells end at 8, and a larger
            stride needs the classification head.
        num_conv_filters: the stem's output filters per cell state
            (``--nas_stem_output_num_conv_filters``, 20 in the original).
        use_classification_head: the original's ``--nas_use_classification_head``: convs
            down to stride 32 (atrous past ``output_stride``) and a 1x1 conv to 2048.
        remove_os32_stride: ``--nas_remove_os32_stride``: stride-32 cells stay at 16.
        levels: the cells' levels (tests; default the variant's).
        genotype: "pnas" or "hnas" (default the variant's).
        weight_decay: L2 (4e-5 in the original).
        norm: BatchNorm options; default decay 0.9997, epsilon 1e-3 (``nas_arg_scope``).
        **kwargs: ``keras.Model`` arguments.

    Example:
        >>> net = NASNetwork("pnasnet", output_stride=16)
        >>> net(keras.ops.zeros((1, 65, 65, 3)))["features"].shape
        (1, 5, 5, 400)

    Reference:
        Liu et al., "Progressive Neural Architecture Search", ECCV 2018; Liu et al.,
        "Auto-DeepLab: Hierarchical Neural Architecture Search for Semantic Image
        Segmentation", CVPR 2019.
    """

    def __init__(
        self,
        variant: str = "pnasnet",
        output_stride: int | None = 16,
        num_conv_filters: int = 20,
        use_classification_head: bool = False,
        remove_os32_stride: bool = False,
        levels=None,
        genotype: str | None = None,
        weight_decay: float = 4e-5,
        norm: NormOptions | dict | None = None,
        input_channels: int = 3,
        **kwargs,
    ):
        if variant not in DECODER_END_POINTS:
            raise ValueError(f"NASNetwork: variant must be one of {sorted(DECODER_END_POINTS)}, "
                             f"got {variant!r}.")
        output_stride = check_output_stride(output_stride, f"nas_{variant}") or 32
        norm = NormOptions.of(norm, momentum=0.9997, epsilon=1e-3)
        genotype = genotype or variant[:4]
        if levels is None:
            levels = _levels(variant, output_stride, use_classification_head,
                             remove_os32_stride)
        levels = tuple(int(v) for v in levels)
        cell_type: Genotype = GENOTYPES[genotype]
        schedule = DropPathSchedule()
        builder = CellBuilder(weight_decay, norm, len(levels), schedule)

        inputs = keras.Input(shape=(None, None, input_channels), name="images")
        x = builder.conv_bn(inputs, 64, 3, "conv0", "conv0_bn", strides=2, activation="relu")
        stem_1 = builder.conv_bn(x, 64, 3, "conv1", "conv1_bn")
        x = builder.relu(stem_1, "stem")
        x = builder.conv_bn(x, 128, 3, "conv2", "conv2_bn", strides=2)
        cell_outputs = [stem_1, x]
        end_points = {"Stem": x}
        filter_scaling, level = 1.0, 0
        for index, target in enumerate(levels):
            stride = 1
            if target == level + 1:
                stride = 1 if (target == 3 and remove_os32_stride) else 2
                filter_scaling *= 2.0
            elif target == level - 1:
                if not (level == 3 and remove_os32_stride):
                    x = ResizeLike(scale=2.0, name=f"cell_{index}.upsample")([x, x])
                filter_scaling /= 2.0
            elif target != level:
                raise ValueError(f"NASNetwork: levels move one at a time from 0, got {levels}.")
            x = builder.cell(x, cell_outputs[-2], cell_type,
                             int(num_conv_filters * filter_scaling), stride, index)
            level = target
            end_points[f"Cell_{index}"] = x
            cell_outputs.append(x)
        x = keras.layers.ReLU(name="features_relu")(x)
        if use_classification_head:
            # The cells' stride: level 3 stays at 16 with remove_os32_stride.
            top = min(level, 2) if remove_os32_stride else level
            x = _classification_head(builder, x, 2 ** (2 + top), output_stride)
        outputs = {"features": x}
        for stride_key, end_point in DECODER_END_POINTS[variant].items():
            if end_point in end_points:
                outputs[f"stride_{stride_key}"] = end_points[end_point]
        kwargs.setdefault("name", f"nas_{variant}")
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)
        self._original_names = builder.names
        self.drop_path_schedule = schedule
        self._config = dict(
            variant=variant, output_stride=output_stride, num_conv_filters=num_conv_filters,
            use_classification_head=use_classification_head,
            remove_os32_stride=remove_os32_stride, levels=list(levels), genotype=genotype,
            weight_decay=weight_decay, norm=norm.to_config(), input_channels=input_channels)
        self.checkpoint_prefix = variant  # the original's scope: pnasnet / hnasnet

    def original_scope_targets(self):
        """The original's variable names of every conv and BatchNorm (for
        :func:`deeplab.weights.scopes.scope_targets`)."""
        from deeplab.layers.conv_bn_act import ConvBNAct
        from deeplab.weights.scopes import ScopeTarget

        targets = []
        prefix = self.checkpoint_prefix
        for name in self._original_names:
            layer = self.get_layer(name.layer)
            conv, bn = (layer.conv, layer.bn) if isinstance(layer, ConvBNAct) else (layer, None)
            targets.append(ScopeTarget(
                f"{prefix}/{name.scope}", conv, bn if name.bn_scope else None,
                kernel_name=name.kernel_name,
                bn_scope=f"{prefix}/{name.bn_scope}" if name.bn_scope else ""))
        return targets


def _levels(variant: str, output_stride: int, head: bool, remove_os32_stride: bool):
    if variant == "hnasnet":
        if output_stride != 8 and not head:
            raise ValueError(f"nas_hnasnet: its cells end at output stride 8; output_stride "
                             f"{output_stride} needs --nas_use_classification_head (which "
                             "strides on to it), or give --output_stride=8.")
        return HNAS_LEVELS
    if output_stride == 32 and remove_os32_stride and not head:
        raise ValueError("nas_pnasnet: --nas_remove_os32_stride keeps the stride-32 cells at "
                         "output stride 16: give --output_stride=16.")
    return PNAS_LEVELS[output_stride]


def _classification_head(builder: CellBuilder, x, current_stride: int, output_stride: int):
    """The original's ``nas_use_classification_head``: 3x3 convs down to stride 32 (atrous
    once ``output_stride`` is reached), then a 1x1 conv to 2048, each with BN and ReLU."""
    if output_stride % current_stride:
        raise ValueError(f"NAS classification head: output_stride {output_stride} is not a "
                         f"multiple of the cells' stride {current_stride}.")
    remaining, rate = output_stride // current_stride, 1
    stride_now = current_stride
    while stride_now < 32:
        stride_now *= 2
        scope = f"downsample_os{stride_now}"
        if remaining != 1:
            stride, remaining = 2, remaining // 2
        else:
            stride, rate = 1, rate * 2
        x = builder.conv_bn(x, HEAD_FILTERS[stride_now], 3, f"{scope}_conv", f"{scope}_bn",
                            strides=stride, rate=rate, activation="relu")
    return builder.conv_bn(x, 2048, 1, "classification_head_conv", "classification_head_bn",
                           activation="relu")
