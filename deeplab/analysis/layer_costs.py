"""Parameters and multiply-adds per Keras layer, at any depth of the layer tree.

Graph ops carry their Keras layer scopes in their names
(``deeplab_1/aspp_1/aspp1_1/depthwise_1/conv_1/DepthwiseConv2dNative``; TF appends
``_<n>`` to each scope), so each op counted by :func:`deeplab.analysis.flops.count_ops`
is walked down the layer tree by name and charged to the layer it reaches at ``depth``.
"""

from __future__ import annotations

import dataclasses
import math
import re

import keras

from deeplab.analysis.flops import count_ops

_SCOPE_SUFFIX = re.compile(r"_\d+$")


@dataclasses.dataclass(frozen=True)
class LayerCost:
    """One row: a layer path (``aspp/aspp1``), its trainable parameters and its MAdds."""

    name: str
    parameters: int
    madds: int


def _children(layer: keras.Layer) -> list[keras.Layer]:
    return [
        child for child in layer._flatten_layers(include_self=False, recursive=False)
        if not isinstance(child, keras.layers.InputLayer)
    ]


def _parameters(layer: keras.Layer) -> int:
    return int(sum(math.prod(w.shape) for w in layer.trainable_weights))


def _path_of(op_name: str, root: keras.Layer) -> tuple[str, ...]:
    """Layer names from the root down to the deepest layer the op's scopes name."""
    path = []
    layer = root
    for scope in op_name.split("/")[1:-1]:  # [0] is the model's own scope, [-1] the op
        by_name = {child.name: child for child in _children(layer)}
        child = by_name.get(scope) or by_name.get(_SCOPE_SUFFIX.sub("", scope))
        if child is None:
            break  # Scopes below this are the layer's own ops, not sublayers.
        path.append(child.name)
        layer = child
    return tuple(path)


def layer_costs(
    model: keras.Model, input_shape=(1, 513, 513, 3), space_to_batch: bool = False,
    depth: int = 1,
) -> list[LayerCost]:
    """One :class:`LayerCost` per layer ``depth`` levels down (or a shallower leaf).

    Rows follow the model's layer order; layers with neither parameters nor MAdds
    (preprocessing, resizes, dropout) are left out. Ops outside every layer go to a
    ``(model)`` row. The rows add up to ``count_madds`` and ``count_parameters``.
    """
    if depth < 1:
        raise ValueError(f"layer_costs: depth must be >= 1, got {depth}.")
    madds: dict[tuple[str, ...], int] = {}
    for op in count_ops(model, input_shape, space_to_batch):
        key = _path_of(op.name, model)[:depth]
        madds[key] = madds.get(key, 0) + op.madds
    rows = []

    def visit(layer, path):
        children = _children(layer)
        if path and (len(path) == depth or not children):
            cost = LayerCost("/".join(path), _parameters(layer),
                             sum(m for key, m in madds.items() if key[: len(path)] == path))
            if cost.parameters or cost.madds:
                rows.append(cost)
            return
        for child in children:
            visit(child, path + (child.name,))

    visit(model, ())
    if madds.get(()):
        rows.append(LayerCost("(model)", 0, madds[()]))
    return rows
