"""TFLite conversion: fixed input size, float / float16 / dynamic-range / full-int8 models."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from deeplab.ops import native_dilation, resize_nearest
from deeplab.quantization import quantizers, require_learned_ranges, simulation
from deeplab.runs.atomic import write_bytes, write_text

QUANTIZATIONS = ("float", "float16", "dynamic", "int8")
OUTPUTS = ("argmax", "logits")
INFERENCE_TYPES = ("uint8", "int8")


def _endpoint(model, output: str):
    low_resolution = output == "argmax" and not model.config.prediction_with_upsampled_logits
    head = model.head_logits_model() if low_resolution else None

    def segment(image):
        if head is not None:
            # The original's prediction_with_upsampled_logits=False: argmax at the logits'
            # stride, nearest (align corners) to the input size; the logits are resized
            # (same labels) since TFLite's nearest resize takes no int32.
            logits = resize_nearest(head(image, training=False), tf.shape(image)[1:3])
            return {"semantic_predictions": tf.argmax(logits, -1, output_type=tf.int32)}
        logits = model(image, training=False)
        if output == "argmax":
            # int32 ArgMax is a TFLite builtin; int64 (TF's default) needs a cast op.
            return {"semantic_predictions": tf.argmax(logits, -1, output_type=tf.int32)}
        return {"logits": logits}

    return segment


def convert_to_tflite(
    model,
    crop_size,
    quantization: str = "float",
    output: str = "argmax",
    representative_images: Callable[[], Iterable[np.ndarray]] | None = None,
    inference_type: str = "uint8",
) -> bytes:
    """Converts a DeepLab Keras model to a TFLite flatbuffer with builtin ops only.

    Args:
        model: a :class:`deeplab.model.DeepLab`.
        crop_size: (height, width) of the fixed input; the input is RGB 0-255 (float32,
            or ``inference_type`` for int8), preprocessing stays inside the model.
        quantization: "float", "float16" (weights), "dynamic" (int8 weights, float
            activations) or "int8" (full integer, needs ``representative_images``).
        output: "argmax" (int32 [1, H, W] class ids) or "logits" (float [1, H, W, C]; use
            this for the GPU delegate, which has no ARG_MAX).
        representative_images: for int8, a callable returning an iterable of RGB uint8 or
            float [H, W, 3] images of ``crop_size`` (calibration data). Not needed for a
            quantization-aware model (``quantize_delay_step >= 0``), whose int8 file uses
            the ranges it learned in training.
        inference_type: int8 input/output type, "uint8" or "int8".
    """
    if quantization not in QUANTIZATIONS:
        raise ValueError(f"quantization must be one of {QUANTIZATIONS}, got {quantization!r}.")
    if output not in OUTPUTS:
        raise ValueError(f"output must be one of {OUTPUTS}, got {output!r}.")
    if inference_type not in INFERENCE_TYPES:
        raise ValueError(f"inference_type must be one of {INFERENCE_TYPES}, got "
                         f"{inference_type!r}.")
    learned = quantization == "int8" and is_quantization_aware(model)
    if quantization == "int8" and not learned and representative_images is None:
        raise ValueError("int8 quantization needs calibration images (representative data "
                         "set): pass --dataset_dir with TFRecords.")
    with tempfile.TemporaryDirectory() as directory:
        # A quantization-aware model converts to int8 with the ranges it learned (its
        # FakeQuant ops); to anything else, as the float model it also is.
        with simulation(learned):
            write_conversion_saved_model(model, crop_size, output, directory)
        converter = tf.lite.TFLiteConverter.from_saved_model(directory)
        if learned:
            return _convert_quantization_aware(converter, output, inference_type)
        return _convert(converter, crop_size, quantization, output, representative_images,
                        inference_type)


def is_quantization_aware(model) -> bool:
    """Whether ``model`` was built with ``quantize_delay_step >= 0``; ValueError when its
    checkpoint never learned the ranges (it predates the delay step)."""
    if not quantizers(model):
        return False
    require_learned_ranges(model)
    return True


def _convert_quantization_aware(converter, output, inference_type):
    # The graph's FakeQuant ops carry every range, so no representative data set; the
    # converter recognises them only with the default optimization and the builtin set
    # (TFLITE_BUILTINS_INT8 would ask for calibration data).
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    converter.inference_input_type = getattr(tf, inference_type)
    if output == "logits":
        converter.inference_output_type = getattr(tf, inference_type)
    return converter.convert()


def write_conversion_saved_model(model, crop_size, output: str, directory: str | Path) -> None:
    """Writes the SavedModel the TFLite converter reads: dilated convs as single native ops.

    Traced inside :func:`deeplab.ops.native_dilation`, so they convert to dilated
    CONV_2D / DEPTHWISE_CONV_2D with BN folded, not SPACE_TO_BATCH_ND (the converter
    re-fuses the space-to-batch form only where it recognises the pattern). TensorFlow
    cannot run this graph on every machine: it is only ever handed to the converter.
    """
    # Through Keras' ExportArchive: a plain tf.Module SavedModel or a concrete function
    # leaves the Keras 3 variables as READ_VARIABLE ops (unfrozen, BN not folded).
    archive = keras.export.ExportArchive()
    archive.track(model)
    with native_dilation():
        archive.add_endpoint(
            "serve", _endpoint(model, output),
            input_signature=[tf.TensorSpec([1, int(crop_size[0]), int(crop_size[1]), 3],
                                           tf.float32, name="image")],
        )
        archive.write_out(str(directory), verbose=False)


def _convert(converter, crop_size, quantization, output, representative_images, inference_type):
    # Builtins only: a model that needs Flex (select TF) ops fails here, not on the phone.
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if quantization != "float":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantization == "float16":
        converter.target_spec.supported_types = [tf.float16]
    if quantization == "int8":

        def representative_dataset():
            for image in representative_images():
                image = np.asarray(image, np.float32)
                if image.shape[:2] != tuple(crop_size):
                    raise ValueError(f"calibration image of shape {image.shape} does not match "
                                     f"crop_size {tuple(crop_size)}")
                yield [image[None]]

        converter.representative_dataset = representative_dataset
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = getattr(tf, inference_type)
        if output == "logits":
            converter.inference_output_type = getattr(tf, inference_type)
    return converter.convert()


def check_tflite_class_names(flatbuffer: bytes, class_names, names_source: str) -> None:
    """Refuses class names that are not one per class the TFLite model predicts (its logits
    output's depth, or its ARG_MAX input's); nothing to check without names.

    Raises:
        ValueError: another count, or a model whose count cannot be read.
    """
    from deeplab.inference.segmenters import tflite_class_count, tflite_interpreter
    from deeplab.runs.store import check_class_names

    if not class_names:
        return
    count = tflite_class_count(tflite_interpreter(model_content=flatbuffer))
    if count is None:
        raise ValueError(f"the class count of the converted model cannot be read from it (no "
                         f"logits output, no ARG_MAX), so {names_source} cannot be checked "
                         "against it: leave them out")
    check_class_names(class_names, count, names_source)


def write_tflite(flatbuffer: bytes, output_path: str | Path, class_names=(),
                 names_source: str = "the class names") -> Path:
    """Writes the model (and ``<stem>.labels.txt`` with one class name a line), atomically.

    The names must be one per class the model predicts (read from the flatbuffer): class
    names travel only with a model of as many classes. Without names, a labels file left
    beside ``output_path`` by an earlier conversion (of another model) is removed.

    Raises:
        ValueError: names for another class count, or a model whose count cannot be read.
    """
    from deeplab.inference.labels import TFLITE_LABELS_SUFFIX

    output_path = Path(output_path)
    labels_path = output_path.with_name(output_path.stem + TFLITE_LABELS_SUFFIX)
    check_tflite_class_names(flatbuffer, class_names, names_source)
    write_bytes(output_path, flatbuffer)
    if class_names:
        write_text(labels_path, "\n".join(class_names) + "\n")
    elif labels_path.is_file():
        labels_path.unlink()  # another model's names must not name this one
    return output_path


def op_names(flatbuffer: bytes) -> list[str]:
    """Builtin op names of a TFLite model (for checks such as 'no SPACE_TO_BATCH_ND')."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=flatbuffer)
    return sorted({op["op_name"] for op in interpreter._get_ops_details()})


def convert_frozen_graph(
    graph_def,
    input_tensor_name: str | None,
    output_tensor_name: str,
    crop_size,
    quantization: str = "float",
    source: str = "the graph",
) -> bytes:
    """Converts a frozen GraphDef (the original's, or our ``frozen_inference_graph.pb``)
    between two of its tensors, as the original's convert_to_tflite.py did.

    Args:
        graph_def: a frozen ``tf.compat.v1.GraphDef``
            (:func:`deeplab.export.frozen_graph.load_graph_def`).
        input_tensor_name: the model's input, ``node:0``; None means ``ImageTensor:0`` when
            the graph has it.
        output_tensor_name: the model's output, e.g. ``ArgMax:0`` (class ids, in the
            original's graphs and ours), ``SemanticPredictions:0`` or
            ``SemanticProbabilities:0``.
        crop_size: (height, width) given to the input's unknown spatial dimensions (ours:
            ``ImageTensor`` is [1, None, None, 3]); a static input keeps its shape.
        quantization: a float graph converts to "float", "float16" or "dynamic"; a graph
            with FakeQuant nodes (the original's quantization-aware export) becomes a uint8
            model with input stats (127.5, 127.5), as the original's did, and takes "float"
            (its quantization is in the graph).
        source: how error messages name the graph (its path).

    Raises:
        ValueError: a tensor not in the graph (one line listing candidates), an output
            that needs another placeholder than the input, or a quantization the graph
            cannot take.
    """
    from deeplab.export import frozen_graph

    input_tensor_name = frozen_graph.default_input_tensor(graph_def, input_tensor_name, source)
    graph = frozen_graph.import_graph(graph_def)
    inputs = frozen_graph.graph_tensor(graph, graph_def, input_tensor_name,
                                       "input_tensor_name", source)
    outputs = frozen_graph.graph_tensor(graph, graph_def, output_tensor_name,
                                        "output_tensor_name", source)
    others = frozen_graph.placeholders_reached(graph_def, outputs.name, inputs.name)
    if others:
        raise ValueError(
            f"--output_tensor_name={output_tensor_name} is computed from {', '.join(others)}, "
            f"not only from --input_tensor_name={input_tensor_name}; a TFLite model has one "
            f"input: pick one the output depends on alone (in this release's graphs, "
            f"{frozen_graph.INPUT_NODE}:0)")
    quantized = frozen_graph.is_fake_quantized(graph_def)
    if quantized and quantization != "float":
        raise ValueError(f"--quantization={quantization}: {source} is already quantized "
                         "(FakeQuant nodes) and converts to uint8 as it is; leave it at float")
    if quantization == "int8":
        raise ValueError("--quantization=int8 calibrates a Keras model: give --checkpoint_path "
                         "or --saved_model_dir; a float frozen graph converts to float, "
                         "float16 or dynamic")
    _make_input_static(inputs, crop_size, input_tensor_name)
    with tf.compat.v1.Session(graph=graph) as session:
        converter = tf.compat.v1.lite.TFLiteConverter.from_session(session, [inputs], [outputs])
        if quantized:
            converter.inference_type = tf.uint8
            converter.quantized_input_stats = {converter.get_input_arrays()[0]: (127.5, 127.5)}
            return converter.convert()
        return _convert(converter, crop_size, quantization, "argmax", None, "uint8")


def _make_input_static(tensor, crop_size, name: str) -> None:
    """Gives an input of unknown batch / height / width the shape [1, crop_h, crop_w, c]."""
    shape = tensor.shape
    if shape.is_fully_defined():
        return
    if shape.rank != 4 or shape[-1] is None:
        raise ValueError(f"--input_tensor_name={name} has shape {shape}: give an input of a "
                         "static shape or of shape [batch, height, width, channels]")
    tensor.set_shape([1, int(crop_size[0]), int(crop_size[1]), int(shape[-1])])


def _as_input(image: np.ndarray, detail: dict) -> np.ndarray:
    """A uint8 RGB image as the TFLite input wants it: raw pixels for uint8 (the original's
    and our int8 exports) and float32 (ours take 0-255), quantized for int8."""
    dtype = detail["dtype"]
    if dtype == np.int8:
        scale, zero_point = detail["quantization"]
        if scale:
            return np.clip(np.round(image / scale + zero_point), -128, 127).astype(np.int8)
        return (image.astype(np.int16) - 128).astype(np.int8)
    return image.astype(dtype)


def as_labels(output: np.ndarray) -> np.ndarray:
    """Class ids [N, H, W] from class ids, or from scores [N, H, W, C] (argmax)."""
    output = np.asarray(output)
    return output.argmax(-1) if output.ndim == 4 else output.astype(np.int64)


def _share(fraction: float) -> str:
    return "<0.1%" if 0 < fraction < 0.001 else f"{fraction:.1%}"


def check_on_image(
    flatbuffer: bytes,
    image_path: str | Path,
    reference: Callable[[np.ndarray], np.ndarray] | None = None,
    reference_name: str = "the source model",
    class_names=(),
) -> str:
    """Runs a TFLite model on an image file and says what came out (--test_image_path).

    The image is resized (bilinear, aspect ratio not kept, as the original's check did) to
    the model's input size.

    Args:
        flatbuffer: the TFLite model.
        image_path: any image file.
        reference: maps the same resized uint8 image [1, h, w, 3] to class ids or scores
            (the source model); the report then gives the share of pixels that agree.
        reference_name: how the report names ``reference``.
        class_names: names shown beside the class ids found.

    Returns:
        The report: the output's shape and type, the classes found with their pixel share
        and, with ``reference``, the agreement.
    """
    import cv2
    from ai_edge_litert.interpreter import Interpreter

    from deeplab.data.image_io import read_image_array

    interpreter = Interpreter(model_content=flatbuffer, num_threads=2)
    interpreter.allocate_tensors()
    detail = interpreter.get_input_details()[0]
    height, width = (int(d) for d in detail["shape"][1:3])
    image = cv2.resize(read_image_array(str(image_path)), (width, height),
                       interpolation=cv2.INTER_LINEAR)[None]
    interpreter.set_tensor(detail["index"], _as_input(image, detail))
    interpreter.invoke()
    output = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    labels = as_labels(output)
    ids, counts = np.unique(labels, return_counts=True)
    found = ", ".join(
        f"{i}{f' {class_names[i]}' if 0 <= i < len(class_names) else ''} "
        f"({_share(count / labels.size)})" for i, count in zip(ids.tolist(), counts.tolist()))
    lines = [f"{image_path} resized to {height}x{width}: output {list(output.shape)} "
             f"{output.dtype.name}; classes found: {found}"]
    if reference is not None:
        agree = np.mean(as_labels(reference(image)) == labels)
        lines.append(f"{100 * agree:.2f}% pixels have matched semantic labels "
                     f"({reference_name}).")
    return "\n".join(lines)
