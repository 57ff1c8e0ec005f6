"""The original's frozen inference graph: ``frozen_inference_graph.pb``, read the TF1 way.

The original's export froze one TF1 graph: a uint8 placeholder ``ImageTensor`` [1, H, W, 3]
in, ``SemanticPredictions`` (int32 [1, H, W]) and ``SemanticProbabilities`` (float
[1, H, W, C]) out. Its demo, and many user scripts, import that GraphDef with
``tf.compat.v1.import_graph_def`` and feed ``ImageTensor:0``. :func:`write_frozen_graph`
writes the same interface from the computation the SavedModel serves
(:class:`~deeplab.export.serving.SegmentationServer`: in-graph resize to range, padding,
multi-scale and flips), with the variables folded into constants. :func:`run_frozen_graph`
runs such a file (ours or the original's) in a TF1 session, and :func:`graph_tensor`
resolves the tensor names a user gives (``convert_to_tflite --quantized_graph_def_path``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import tensorflow as tf
from google.protobuf import message, text_format

from deeplab.export.serving import (
    PREDICTIONS,
    PROBABILITIES,
    SegmentationServer,
    check_serving_image,
)
from deeplab.runs.atomic import write_bytes, write_text

INPUT_NODE = "ImageTensor"
PREDICTIONS_NODE = "SemanticPredictions"
PROBABILITIES_NODE = "SemanticProbabilities"
OUTPUT_NODES = (PREDICTIONS_NODE, PROBABILITIES_NODE)
# The class ids before the output identity, the original convert_to_tflite's default output.
ARGMAX_TENSOR = "ArgMax:0"
INFERENCE_GRAPH_NAME = "inference_graph.pbtxt"
# Ops that end a branch without being an output a user would fetch.
_NOT_OUTPUTS = ("Const", "NoOp", "Assert")


def inference_function(server: SegmentationServer):
    """The server's computation as a concrete function with the original's tensor names.

    Its graph has the placeholder ``ImageTensor`` (uint8 [1, None, None, 3]) and the nodes
    ``SemanticPredictions`` and ``SemanticProbabilities``; variables are still captured
    inputs (see :func:`freeze`).
    """

    @tf.function(input_signature=[tf.TensorSpec([1, None, None, 3], tf.uint8, name=INPUT_NODE)])
    def inference(image):
        outputs = server.segment(check_serving_image(image))
        num_classes = server.model.config.num_classes
        predictions = tf.ensure_shape(outputs[PREDICTIONS], [1, None, None])
        probabilities = tf.ensure_shape(outputs[PROBABILITIES], [1, None, None, num_classes])
        return {PREDICTIONS: tf.identity(predictions, name=PREDICTIONS_NODE),
                PROBABILITIES: tf.identity(probabilities, name=PROBABILITIES_NODE)}

    return inference.get_concrete_function()


def _node_name(tensor_or_input: str) -> str:
    """``^node``, ``node:1`` or ``node`` → ``node``."""
    return tensor_or_input.lstrip("^").split(":")[0]


def prune(graph_def: tf.compat.v1.GraphDef, outputs: Sequence[str]) -> tf.compat.v1.GraphDef:
    """The nodes ``outputs`` depend on (data and control inputs), in the original order.

    Drops what a traced function adds after its outputs (the return identities and the
    ``NoOp`` that orders them), so the graph ends at the named outputs as the original's did.
    """
    nodes = {node.name: node for node in graph_def.node}
    keep: set[str] = set()
    stack = [_node_name(name) for name in outputs]
    while stack:
        name = stack.pop()
        if name not in keep:
            keep.add(name)
            stack.extend(_node_name(i) for i in nodes[name].input)
    pruned = tf.compat.v1.GraphDef()
    pruned.versions.CopyFrom(graph_def.versions)
    pruned.library.CopyFrom(graph_def.library)
    pruned.node.extend(node for node in graph_def.node if node.name in keep)
    return pruned


def freeze(function) -> tf.compat.v1.GraphDef:
    """The concrete function's GraphDef with its variables as constants, ending at the
    original's output nodes."""
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2,
    )

    frozen = convert_variables_to_constants_v2(function)
    return prune(frozen.graph.as_graph_def(), OUTPUT_NODES)


def frozen_graph_def(model, inference_scales=(1.0,), add_flipped_images: bool = False,
                     min_resize_value=None, max_resize_value=None,
                     resize_factor=None) -> tf.compat.v1.GraphDef:
    """The frozen GraphDef of ``model`` with the original's interface (see module doc).

    The options are those of :func:`deeplab.export.saved_model.export_saved_model`, all
    in-graph.
    """
    server = SegmentationServer(model, inference_scales, add_flipped_images, min_resize_value,
                                max_resize_value, resize_factor)
    return freeze(inference_function(server))


def write_inference_graph(function, directory: str | Path) -> Path:
    """Writes ``inference_graph.pbtxt``: the function's graph as text, variables not frozen
    (the original's --save_inference_graph). Atomic."""
    path = Path(directory) / INFERENCE_GRAPH_NAME
    graph_def = prune(function.graph.as_graph_def(), OUTPUT_NODES)
    write_text(path, text_format.MessageToString(graph_def))
    return path


def write_frozen_graph(model, path: str | Path, save_inference_graph: bool = False,
                       inference_scales=(1.0,), add_flipped_images: bool = False,
                       min_resize_value=None, max_resize_value=None,
                       resize_factor=None) -> list[Path]:
    """Writes ``model`` as the original's frozen graph file (temp file, then renamed).

    Args:
        model: a :class:`deeplab.model.DeepLab`.
        path: the ``.pb`` file, e.g. ``.../frozen_inference_graph.pb``.
        save_inference_graph: also write ``inference_graph.pbtxt`` (the unfrozen graph as
            text) in the same folder.
        inference_scales, add_flipped_images, min_resize_value, max_resize_value,
            resize_factor: in-graph options, as for the SavedModel.

    Returns:
        The files written, the frozen graph first.
    """
    path = Path(path)
    server = SegmentationServer(model, inference_scales, add_flipped_images, min_resize_value,
                                max_resize_value, resize_factor)
    function = inference_function(server)
    write_bytes(path, freeze(function).SerializeToString())
    written = [path]
    if save_inference_graph:
        written.append(write_inference_graph(function, path.parent))
    return written


def load_graph_def(path: str | Path) -> tf.compat.v1.GraphDef:
    """Reads a GraphDef: binary (``.pb``, the original's frozen graphs) or text (``.pbtxt``)."""
    path = str(path)
    if not tf.io.gfile.exists(path):
        raise FileNotFoundError(f"{path}: no such GraphDef file")
    with tf.io.gfile.GFile(path, "rb") as f:
        data = f.read()
    graph_def = tf.compat.v1.GraphDef()
    try:
        if path.endswith(".pbtxt"):
            text_format.Parse(data.decode("utf-8"), graph_def)
        else:
            graph_def.ParseFromString(data)
    except (message.DecodeError, text_format.ParseError, UnicodeDecodeError) as error:
        raise ValueError(f"{path} is not a GraphDef ({error})") from None
    return graph_def


def import_graph(graph_def: tf.compat.v1.GraphDef) -> tf.Graph:
    """A new tf.Graph holding ``graph_def`` under its own names (no import prefix)."""
    with tf.Graph().as_default() as graph:
        tf.compat.v1.import_graph_def(graph_def, name="")
    return graph


def run_frozen_graph(graph_def: tf.compat.v1.GraphDef | str | Path, image: np.ndarray,
                     fetches: Sequence[str] = (PREDICTIONS_NODE + ":0",),
                     input_name: str = INPUT_NODE + ":0") -> list[np.ndarray]:
    """Runs a frozen graph as the original's demo did: import, TF1 session, feed, fetch.

    Args:
        graph_def: a GraphDef or the path of one.
        image: what is fed to ``input_name`` (for ``ImageTensor:0``: uint8 [1, H, W, 3]).
        fetches: tensor names to fetch.
        input_name: the tensor fed.

    Returns:
        The fetched arrays, in the order of ``fetches``.
    """
    if not isinstance(graph_def, tf.compat.v1.GraphDef):
        graph_def = load_graph_def(graph_def)
    graph = import_graph(graph_def)
    with tf.compat.v1.Session(graph=graph) as session:
        return session.run(list(fetches), {input_name: image})


def candidate_tensors(graph_def: tf.compat.v1.GraphDef, limit: int = 5) -> tuple[list, list]:
    """(placeholders, outputs): tensor names a user most likely means, ``limit`` of each.

    Outputs are the nodes no other node reads (constants and asserts aside).
    """
    consumed = {_node_name(i) for node in graph_def.node for i in node.input}
    placeholders = [f"{n.name}:0" for n in graph_def.node if n.op == "Placeholder"]
    outputs = [f"{n.name}:0" for n in graph_def.node
               if n.name not in consumed and n.op not in _NOT_OUTPUTS and n.op != "Placeholder"]
    return placeholders[:limit], outputs[:limit]


def graph_tensor(graph: tf.Graph, graph_def: tf.compat.v1.GraphDef, name: str, flag: str,
                 source: str = "the graph") -> tf.Tensor:
    """The tensor ``name`` (``node:index``; a bare node name means ``:0``) of ``graph``.

    Raises:
        ValueError: one line naming ``--flag``, saying it is not in ``source`` and listing
            a few placeholder and output names of the graph.
    """
    tensor_name = name if ":" in name else f"{name}:0"
    try:
        return graph.get_tensor_by_name(tensor_name)
    except (KeyError, ValueError):
        placeholders, outputs = candidate_tensors(graph_def)
        raise ValueError(
            f"--{flag}={name}: no such tensor in {source}; placeholders: "
            f"{', '.join(placeholders) or 'none'}; outputs: {', '.join(outputs) or 'none'}"
        ) from None


def placeholders_reached(graph_def: tf.compat.v1.GraphDef, output: str, stop: str) -> list[str]:
    """Placeholders that ``output`` is computed from (data inputs) without passing ``stop``.

    A TFLite model cut at ``stop`` can only hold the output if this is empty.
    """
    nodes = {node.name: node for node in graph_def.node}
    seen: set[str] = set()
    stack, found = [_node_name(output)], []
    stop = _node_name(stop)
    while stack:
        name = stack.pop()
        if name in seen or name == stop:
            continue
        seen.add(name)
        node = nodes[name]
        if node.op == "Placeholder":
            found.append(name)
        stack.extend(_node_name(i) for i in node.input if not i.startswith("^"))
    return sorted(found)


def is_fake_quantized(graph_def: tf.compat.v1.GraphDef) -> bool:
    """True for a graph exported after quantization-aware training (FakeQuant* nodes)."""
    return any(node.op.startswith("FakeQuant") for node in graph_def.node)


def default_input_tensor(graph_def: tf.compat.v1.GraphDef, name: str | None,
                         source: str = "the graph") -> str:
    """``name``, or ``ImageTensor:0`` when None and the graph has it (ours and the
    original's exports); ValueError listing the placeholders otherwise."""
    if name:
        return name
    if any(node.name == INPUT_NODE for node in graph_def.node):
        return f"{INPUT_NODE}:0"
    placeholders, _ = candidate_tensors(graph_def)
    raise ValueError(f"--input_tensor_name is needed: {source} has no {INPUT_NODE}; "
                     f"placeholders: {', '.join(placeholders) or 'none'}")


def graph_reference(graph_def: tf.compat.v1.GraphDef, input_tensor_name: str,
                    output_tensor_name: str):
    """The graph between two tensors as a function of a uint8 image [1, h, w, 3], fed as a
    TFLite model cut at those tensors is (for ``check_on_image``).

    A uint8 input is fed the image; a float input of a float graph the pixels (0-255, as
    ours take them); a float input of a fake-quantized graph is reached as the original's
    check did, through ``ImageTensor:0`` when the graph has it (its preprocessing then
    gives the backbone input), else fed (pixels - 127.5) / 127.5, the converter's stats.
    """
    graph = import_graph(graph_def)
    dtype = graph.get_tensor_by_name(
        input_tensor_name if ":" in input_tensor_name else f"{input_tensor_name}:0").dtype
    quantized = is_fake_quantized(graph_def)
    has_image_tensor = any(node.name == INPUT_NODE for node in graph_def.node)

    def reference(image: np.ndarray) -> np.ndarray:
        feed, data = input_tensor_name, image
        if dtype != tf.uint8:
            if quantized and has_image_tensor:
                feed = f"{INPUT_NODE}:0"
            elif quantized:
                data = (image.astype(np.float32) - 127.5) / 127.5
            else:
                data = image.astype(dtype.as_numpy_dtype)
        return run_frozen_graph(graph_def, data, [output_tensor_name], feed)[0]

    return reference
