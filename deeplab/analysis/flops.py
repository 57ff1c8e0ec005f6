"""Multiply-add (MAdd) and parameter counts of a Keras model, read from its TF graph.

The model is traced once at a fixed input size and every convolution / matmul op in
the graph is counted, so composite layers (ASPP, KSAC, decoder) need no special rules.
Conv MAdds = Ho·Wo·k²·Cin·Cout, depthwise = Ho·Wo·k²·C (papers.md conventions);
elementwise ops, BN, resizes and pooling are not counted, as in the papers.

``space_to_batch=True`` counts each atrous conv as TF1 ran it (space-to-batch: r·ceil(H/r)
positions per axis), which is how the DeepLab papers' MAdds were measured
(papers.md §4.3); TF2's native dilated convs compute only Ho·Wo positions.
"""

from __future__ import annotations

import dataclasses
import math

import keras
import tensorflow as tf

from deeplab.ops import native_dilation

_CONV_OPS = ("Conv2D", "DepthwiseConv2dNative")


@dataclasses.dataclass(frozen=True)
class OpCount:
    """MAdds of one graph op."""

    name: str
    op_type: str
    madds: int


def _static(shape) -> list[int]:
    dims = shape.as_list()
    if any(d is None for d in dims):
        raise ValueError(f"flops: unknown dimension in shape {dims}; trace with a fixed size.")
    return dims


def _positions(size: int, rate: int, space_to_batch: bool) -> int:
    if space_to_batch and rate > 1:
        return rate * math.ceil(size / rate)
    return size


def _inference_graph(model: keras.Model, input_shape):
    """The model's inference graph at a fixed input size, traced (never run) with dilated
    convs as single native ops, as the TFLite export has them."""
    function = tf.function(lambda x: model(x, training=False))
    with native_dilation():
        return function.get_concrete_function(tf.TensorSpec(input_shape, tf.float32)).graph


def count_ops(
    model: keras.Model, input_shape=(1, 513, 513, 3), space_to_batch: bool = False
) -> list[OpCount]:
    """Per-op multiply-adds of ``model`` on one input of ``input_shape`` (NHWC).

    The graph is traced, never run, with dilated convs as single native ops (what the
    TFLite export runs), so each counts Ho·Wo positions whatever TensorFlow executes.
    """
    graph = _inference_graph(model, input_shape)
    counts = []
    for op in _walk(graph):
        if op.type in _CONV_OPS:
            n, h, w, _ = _static(op.outputs[0].shape)
            kernel = _static(op.inputs[1].shape)
            dilations = list(op.get_attr("dilations"))
            positions = _positions(h, dilations[1], space_to_batch) * _positions(
                w, dilations[2], space_to_batch
            )
            # Conv2D kernel: kh, kw, cin, cout; depthwise: kh, kw, c, multiplier.
            madds = n * positions * math.prod(kernel)
        elif op.type in ("MatMul", "BatchMatMulV2"):
            a = _static(op.inputs[0].shape)
            b = _static(op.inputs[1].shape)
            madds = math.prod(a) * b[-1]
        else:
            continue
        counts.append(OpCount(op.name, op.type, int(madds)))
    return counts


def _walk(graph):
    """Ops of a graph and of the function bodies it calls (Keras nests some calls)."""
    seen = set()
    stack = [graph]
    while stack:
        g = stack.pop()
        yield from g.get_operations()
        for name, function in getattr(g, "_functions", {}).items():
            if name not in seen:
                seen.add(name)
                stack.append(function.graph)


def count_madds(model: keras.Model, input_shape=(1, 513, 513, 3), space_to_batch=False) -> int:
    """Total multiply-adds of ``model`` on one input of ``input_shape``."""
    return sum(c.madds for c in count_ops(model, input_shape, space_to_batch))


def count_profiler_flops(model: keras.Model, input_shape=(1, 513, 513, 3)) -> int:
    """Floating-point operations as TensorFlow's profiler counts them (``float_ops``): two
    per multiply-add of every conv and matmul plus the registered elementwise ops (BN's
    multiply and add, hard-swish's, SE's gates). The original's model zoo reports its
    MobileNetV3 Cityscapes "Mult-Adds" on this scale (15.95 B for MNv3-Large is within
    1.1 % of this count of ours, against 7.58 B conv multiply-adds); the DeepLab papers and
    the other rows use :func:`count_madds`."""
    graph = _inference_graph(model, input_shape)
    options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    options["output"] = "none"
    return int(tf.compat.v1.profiler.profile(graph=graph, options=options).total_float_ops)


def count_parameters(model: keras.Model) -> int:
    """Trainable parameters: conv weights, biases and BN gamma/beta (no moving stats)."""
    return int(sum(math.prod(w.shape) for w in model.trainable_weights))
