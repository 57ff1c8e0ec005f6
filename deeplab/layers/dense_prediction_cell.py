"""The Dense Prediction Cell head (``core/dense_prediction_cell.py``)."""

from __future__ import annotations

import keras
import tensorflow as tf

from deeplab.layers.atrous_separable_conv import AtrousSeparableConv
from deeplab.layers.conv_bn_act import ConvBNAct
from deeplab.layers.norm_options import NormOptions
from deeplab.ops import resize_bilinear, scale_dimension

OPERATIONS = ("conv", "pyramid_pooling")


def pyramid_pooling_arguments(crop_size, output_stride: int, grid_size,
                              image_pooling_crop_size=None) -> tuple[list[int], list[int]]:
    """The original's ``_get_pyramid_pooling_arguments``: (feature size the pooled branch
    is resized to, average-pool kernel) for an image grid of ``grid_size`` cells.

    Example:
        >>> pyramid_pooling_arguments((513, 513), 16, (4, 4))
        ([33, 33], [9, 9])
    """
    pool_crop = image_pooling_crop_size or crop_size
    target = [scale_dimension(d, 1.0 / output_stride) for d in crop_size]
    kernel = [scale_dimension(d, 1.0 / (output_stride * g)) for d, g in zip(pool_crop, grid_size)]
    return target, kernel


def parse_cell(operations: list[dict]) -> list[dict]:
    """Checks a cell in the original's JSON form (a list of ``{"op": "conv" |
    "pyramid_pooling", "kernel", "rate": [rh, rw], "grid_size": [gh, gw], "input": -1 |
    branch}``) and returns it with ints and pairs normalised.

    Raises:
        ValueError: naming the branch and what is wrong.
    """
    if not isinstance(operations, list) or not operations:
        raise ValueError("Dense Prediction Cell: the JSON must be a non-empty list of "
                         "operations.")
    parsed = []
    for i, op in enumerate(operations):
        name = f"Dense Prediction Cell branch{i}"
        if not isinstance(op, dict) or op.get("op") not in OPERATIONS:
            raise ValueError(f"{name}: 'op' must be one of {OPERATIONS}, got {op!r}.")
        source = int(op.get("input", -1))
        if not -1 <= source < i:
            raise ValueError(f"{name}: 'input' must be -1 (the backbone features) or an "
                             f"earlier branch (0..{i - 1}), got {source}.")
        entry = {"op": op["op"], "input": source}
        if op["op"] == "conv":
            kernel = op.get("kernel", 3)
            kernel = kernel[0] if isinstance(kernel, list) and len(set(kernel)) == 1 else kernel
            if kernel not in (1, 3):
                raise ValueError(f"{name}: conv 'kernel' must be 1 or 3, got {kernel!r}.")
            rate = op.get("rate", [1, 1])
            entry.update(kernel=int(kernel), rate=[int(r) for r in (
                rate if isinstance(rate, list) else [rate, rate])])
        else:
            grid = op.get("grid_size")
            if not (isinstance(grid, list) and len(grid) == 2):
                raise ValueError(f"{name}: pyramid_pooling needs 'grid_size': [gh, gw], got "
                                 f"{grid!r}.")
            entry.update(grid_size=[int(g) for g in grid])
        parsed.append(entry)
    return parsed


@keras.saving.register_keras_serializable(package="deeplab")
class DensePredictionCell(keras.layers.Layer):
    """A searched multi-branch head: each branch is a 1x1 conv, a split separable 3x3 conv
    with rates ``(rh, rw) * conv_rate_multiplier``, or an average pool over an image grid
    (1x1 conv, align-corners resize back), fed by the features or an earlier branch; the
    branches are concatenated, dropped out (keep 0.9) and projected by a 1x1 conv
    (``concat_projection``). Variables live under ``meta_architecture/branch<i>``.

    Args:
        cell: the operations (see :func:`parse_cell`).
        output_stride: the features' stride (conv rates are scaled by ``16 // it``).
        crop_size: (h, w) training crop; sizes the pyramid-pooling kernels.
        image_pooling_crop_size: overrides ``crop_size`` for the pooling kernels.
        reduction_size: branch depth (256).
        concat_channels: projection depth (256).
        dropout: dropout rate on the concat.
        activation: "relu" or "relu6".
        weight_decay: slim-style L2 on conv kernels.
        norm: :class:`NormOptions` (or its dict); 0.9997 / 1e-5 as the original.
        **kwargs: base layer arguments.

    Example:
        >>> cell = DensePredictionCell([{"op": "conv", "kernel": 3, "rate": [1, 6],
        ...                              "input": -1}])
        >>> cell(keras.ops.ones((2, 33, 33, 5))).shape
        (2, 33, 33, 256)

    Reference:
        Chen et al., "Searching for Efficient Multi-Scale Architectures for Dense Image
        Prediction", NeurIPS 2018.
    """

    # Checkpoint scopes: meta_architecture/branch0_depthwise, ...
    original_scope_prefix = "meta_architecture/"

    def __init__(self, cell: list[dict], output_stride: int = 16, crop_size=None,
                 image_pooling_crop_size=None, reduction_size: int = 256,
                 concat_channels: int = 256, dropout: float = 0.1, activation: str = "relu",
                 weight_decay: float = 0.0, norm: NormOptions | dict | None = None, **kwargs):
        super().__init__(**kwargs)
        self.cell = parse_cell(cell)
        self.output_stride = output_stride
        self.crop_size = tuple(crop_size) if crop_size else None
        self.image_pooling_crop_size = (tuple(image_pooling_crop_size)
                                        if image_pooling_crop_size else None)
        self.reduction_size = reduction_size
        self.concat_channels = concat_channels
        self.dropout = dropout
        self.activation = activation
        self.weight_decay = weight_decay
        self.norm = NormOptions.of(norm, momentum=0.9997, epsilon=1e-5)
        common = dict(activation=activation, weight_decay=weight_decay, norm=self.norm,
                      dtype=self.dtype_policy)
        multiplier = 16 // output_stride
        self.branches = []
        self.pool_kernels = []
        for i, op in enumerate(self.cell):
            name = f"branch{i}"
            kernel = None
            if op["op"] == "pyramid_pooling":
                if self.crop_size is None:
                    raise ValueError(f"DensePredictionCell {name}: pyramid pooling sizes its "
                                     "kernel from the crop size; set crop_size.")
                _, kernel = pyramid_pooling_arguments(
                    self.crop_size, output_stride, op["grid_size"], self.image_pooling_crop_size)
                branch = ConvBNAct(reduction_size, 1, name=name, **common)
            elif op["kernel"] == 1:
                branch = ConvBNAct(reduction_size, 1, name=name, **common)
            else:
                rate = tuple(r * multiplier for r in op["rate"])
                branch = AtrousSeparableConv(reduction_size, 3, dilation_rate=rate, name=name,
                                             **common)
            self.branches.append(branch)
            self.pool_kernels.append(kernel)
        self.dropout_layer = keras.layers.Dropout(dropout, dtype=self.dtype_policy)
        self.projection = ConvBNAct(concat_channels, 1, name="concat_projection", **common)

    def build(self, input_shape):
        for op, branch in zip(self.cell, self.branches):
            channels = input_shape[-1] if op["input"] < 0 else self.reduction_size
            branch.build((*input_shape[:-1], channels))
        self.projection.build((*input_shape[:-1], len(self.cell) * self.reduction_size))

    def call(self, inputs, training=None):
        outputs = []
        for op, branch, kernel in zip(self.cell, self.branches, self.pool_kernels):
            x = inputs if op["input"] < 0 else outputs[op["input"]]
            if kernel is not None:
                pooled = tf.nn.avg_pool2d(x, ksize=kernel, strides=1, padding="VALID")
                x = resize_bilinear(branch(pooled, training=training), tf.shape(x)[1:3])
            else:
                x = branch(x, training=training)
            outputs.append(x)
        x = self.dropout_layer(tf.concat(outputs, axis=-1), training=training)
        return self.projection(x, training=training)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.concat_channels)

    def get_config(self):
        config = super().get_config()
        config.update(
            cell=self.cell, output_stride=self.output_stride,
            crop_size=list(self.crop_size) if self.crop_size else None,
            image_pooling_crop_size=(list(self.image_pooling_crop_size)
                                     if self.image_pooling_crop_size else None),
            reduction_size=self.reduction_size, concat_channels=self.concat_channels,
            dropout=self.dropout, activation=self.activation,
            weight_decay=self.weight_decay, norm=self.norm.to_config())
        return config
