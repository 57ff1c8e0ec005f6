"""The NAS cells of the original (``core/nas_cell.py``, ``core/nas_genotypes.py``), built
into a functional graph with the original's variable scopes recorded beside each layer."""

from __future__ import annotations

import dataclasses

import keras

from deeplab.layers.atrous_depthwise_conv2d import AtrousDepthwiseConv2D
from deeplab.layers.conv_bn_act import ConvBNAct, l2_regularizer
from deeplab.layers.drop_path import DropPath, DropPathSchedule
from deeplab.layers.norm_options import NormOptions
from deeplab.layers.resize_like import ResizeLike


@dataclasses.dataclass(frozen=True)
class Genotype:
    """A cell: pairs of operations on hidden states, summed; unused states concatenated.

    Attributes:
        operations: ``op_kernel-size_num-layers`` names, left and right of each pair.
        hiddenstate_indices: the state each operation reads (0, 1: the cell's inputs).
        used_hiddenstates: 1 for states consumed inside the cell (not in its output).
    """

    operations: tuple[str, ...]
    hiddenstate_indices: tuple[int, ...]
    used_hiddenstates: tuple[int, ...]

    def __post_init__(self):
        if len(self.operations) != len(self.hiddenstate_indices) or len(self.operations) % 2:
            raise ValueError("Genotype: one hidden state per operation, in pairs.")

    @property
    def num_output_states(self) -> int:
        return self.used_hiddenstates.count(0)


# PNASNet-5 (Liu et al., ECCV 2018) and Auto-DeepLab's cell (Liu et al., CVPR 2019).
PNAS = Genotype(
    ("separable_5x5_2", "max_pool_3x3", "separable_7x7_2", "max_pool_3x3", "separable_5x5_2",
     "separable_3x3_2", "separable_3x3_2", "max_pool_3x3", "separable_3x3_2", "none"),
    (1, 1, 0, 0, 0, 0, 4, 0, 1, 0), (1, 1, 0, 0, 0, 0, 0))
HNAS = Genotype(
    ("atrous_5x5", "separable_3x3_2", "separable_3x3_2", "atrous_3x3", "separable_3x3_2",
     "separable_3x3_2", "separable_5x5_2", "separable_5x5_2", "separable_5x5_2", "atrous_5x5"),
    (1, 0, 1, 0, 3, 1, 4, 2, 3, 5), (1, 1, 0, 0, 0, 0, 0))


@dataclasses.dataclass(frozen=True)
class OriginalName:
    """Where one Keras layer's variables live in the original's checkpoint.

    Attributes:
        layer: the Keras layer name.
        scope: the variable scope of its kernel (under the network's scope).
        bn_scope: the scope of its BatchNorm's variables, "" for none.
        kernel_name: the kernel's variable name in ``scope`` ("" for slim's default).
    """

    layer: str
    scope: str
    bn_scope: str = ""
    kernel_name: str = ""


class CellBuilder:
    """Builds the network's layers and records each one's original name.

    Args:
        weight_decay: L2 on every kernel (the original regularises depthwise ones too).
        norm: the BatchNorm options.
        total_cells: the number of cells (for drop path).
        schedule: the network's drop-path schedule.
    """

    def __init__(self, weight_decay: float, norm: NormOptions, total_cells: int,
                 schedule: DropPathSchedule):
        self.weight_decay = weight_decay
        self.norm = norm
        self.total_cells = total_cells
        self.schedule = schedule
        self.names: list[OriginalName] = []
        self._count = 0
        self.initializer = keras.initializers.VarianceScaling(
            scale=1.0 / 3.0, mode="fan_in", distribution="uniform")

    def _unique(self, scope: str, what: str) -> str:
        self._count += 1
        return f"{scope}.{what}_{self._count}".replace("/", ".")

    def relu(self, x, scope: str):
        return keras.layers.ReLU(name=self._unique(scope, "relu"))(x)

    def conv_bn(self, x, filters: int, kernel_size: int, scope: str, bn_scope: str,
                strides: int = 1, rate: int = 1, activation=None):
        """slim's conv2d (no bias; fixed padding when strided, as ``conv2d_same``) and a
        BatchNorm called in its own scope."""
        name = scope.replace("/", ".")
        self.names.append(OriginalName(name, scope, bn_scope))
        return ConvBNAct(filters, kernel_size, strides=strides, dilation_rate=rate,
                         explicit_padding=kernel_size > 1, activation=activation,
                         weight_decay=self.weight_decay, kernel_initializer=self.initializer,
                         norm=self.norm, name=name)(x)

    def separable_bn(self, x, filters: int, kernel_size: int, strides: int, scope: str,
                     bn_scope: str):
        """xception's ``separable_conv2d_same`` (depthwise then pointwise, nothing between,
        both kernels in ``scope``) and its BatchNorm."""
        name = scope.replace("/", ".")
        depthwise = AtrousDepthwiseConv2D(
            kernel_size, strides=strides, explicit_padding=True, use_bias=False,
            depthwise_initializer=self.initializer,
            depthwise_regularizer=l2_regularizer(self.weight_decay), name=f"{name}.depthwise")
        self.names.append(OriginalName(depthwise.name, scope, kernel_name="depthwise_weights"))
        pointwise = ConvBNAct(filters, 1, activation=None, weight_decay=self.weight_decay,
                              kernel_initializer=self.initializer, norm=self.norm,
                              name=f"{name}.pointwise")
        self.names.append(OriginalName(pointwise.name, scope, bn_scope, "pointwise_weights"))
        return pointwise(depthwise(x))

    def cell(self, net, prev, genotype: Genotype, filters: int, stride: int, cell_index: int):
        """One cell (``NASBaseCell.__call__``); returns its output (the unused states,
        concatenated)."""
        scope = f"cell_{cell_index}"
        # The original resizes the previous cell's output to this cell's input where their
        # widths differ (another level). Always resizing is the same: an align-corners resize
        # to the same size is the identity, exactly; and sizes an up-and-down trip does not
        # restore (not k * 32 + 1), where the original's states would not add up, still run.
        prev = ResizeLike(name=self._unique(scope, "prev_resize"))([prev, net])
        if prev.shape[-1] != filters:
            prev = self.relu(prev, scope)
            prev = self.conv_bn(prev, filters, 1, f"{scope}/prev_1x1", f"{scope}/prev_bn")
        net = self.relu(net, scope)
        net = self.conv_bn(net, filters, 1, f"{scope}/1x1", f"{scope}/beginning_bn")
        states = [net, prev]
        for i in range(len(genotype.operations) // 2):
            outputs = []
            for side, j in (("left", 2 * i), ("right", 2 * i + 1)):
                index = genotype.hiddenstate_indices[j]
                outputs.append(self.operation(
                    states[index], genotype.operations[j], stride, index < 2, filters,
                    f"{scope}/comb_iter_{i}/{side}", cell_index))
            states.append(keras.layers.Add(name=self._unique(scope, f"comb_iter_{i}"))(outputs))
        unused = [s for s, used in zip(states, genotype.used_hiddenstates) if not used]
        return keras.layers.Concatenate(name=f"{scope}.cell_output")(unused)

    def operation(self, x, operation: str, stride: int, from_cell_input: bool, filters: int,
                  scope: str, cell_index: int):
        """``NASBaseCell._apply_conv_operation``."""
        if stride > 1 and not from_cell_input:
            stride = 1
        input_filters = x.shape[-1]
        if operation.startswith("separable"):
            kernel = int(operation.split("x")[0][-1])
            for layer in range(int(operation.split("_")[-1])):
                x = self.relu(x, scope)
                x = self.separable_bn(x, filters, kernel, stride,
                                      f"{scope}/separable_{kernel}x{kernel}_{layer + 1}",
                                      f"{scope}/bn_sep_{kernel}x{kernel}_{layer + 1}")
                stride = 1
        elif operation.startswith("atrous"):
            kernel = int(operation.split("x")[0][-1])
            x = self.relu(x, scope)
            rate = 2
            if stride == 2:  # halve the size (the original's scale_dimension), then rate 1
                x = ResizeLike(scale=0.5, name=self._unique(scope, "downsample"))([x, x])
                rate = 1
            x = self.conv_bn(x, filters, kernel, f"{scope}/atrous_{kernel}x{kernel}",
                             f"{scope}/bn_atr_{kernel}x{kernel}", rate=rate)
        elif operation == "none":
            if stride > 1 or input_filters != filters:
                x = self.relu(x, scope)
                x = self.conv_bn(x, filters, 1, f"{scope}/1x1", f"{scope}/bn_1", strides=stride)
        elif "pool" in operation:
            size = int(operation.split("_")[-1].split("x")[0])
            pool = {"avg": keras.layers.AveragePooling2D,
                    "max": keras.layers.MaxPooling2D}.get(operation.split("_")[0])
            if pool is None:
                raise ValueError(f"NAS cell: unknown pooling {operation!r}")
            x = pool(size, strides=stride, padding="same", name=self._unique(scope, "pool"))(x)
            if input_filters != filters:
                x = self.conv_bn(x, filters, 1, f"{scope}/1x1", f"{scope}/bn_1")
        else:
            raise ValueError(f"NAS cell: unknown operation {operation!r}")
        if operation != "none":
            x = DropPath(cell_index, self.total_cells, self.schedule,
                         name=self._unique(scope, "drop_path"))(x)
        return x
