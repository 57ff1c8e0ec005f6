"""TFLite conversion: fixed input size, float / float16 / dynamic-range / full-int8 models."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from deeplab.ops import native_dilation
from deeplab.runs.atomic import write_bytes, write_text

QUANTIZATIONS = ("float", "float16", "dynamic", "int8")
OUTPUTS = ("argmax", "logits")
INFERENCE_TYPES = ("uint8", "int8")


def _endpoint(model, output: str):
    def segment(image):
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
            float [H, W, 3] images of ``crop_size`` (calibration data).
        inference_type: int8 input/output type, "uint8" or "int8".
    """
    if quantization not in QUANTIZATIONS:
        raise ValueError(f"quantization must be one of {QUANTIZATIONS}, got {quantization!r}.")
    if output not in OUTPUTS:
        raise ValueError(f"output must be one of {OUTPUTS}, got {output!r}.")
    if inference_type not in INFERENCE_TYPES:
        raise ValueError(f"inference_type must be one of {INFERENCE_TYPES}, got "
                         f"{inference_type!r}.")
    if quantization == "int8" and representative_images is None:
        raise ValueError("int8 quantization needs calibration images (representative data "
                         "set): pass --dataset_dir with TFRecords.")
    with tempfile.TemporaryDirectory() as directory:
        write_conversion_saved_model(model, crop_size, output, directory)
        converter = tf.lite.TFLiteConverter.from_saved_model(directory)
        return _convert(converter, crop_size, quantization, output, representative_images,
                        inference_type)


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


def write_tflite(flatbuffer: bytes, output_path: str | Path, class_names=()) -> Path:
    """Writes the model (and ``<stem>.labels.txt`` with one class name a line), atomically."""
    output_path = Path(output_path)
    write_bytes(output_path, flatbuffer)
    if class_names:
        write_text(output_path.with_name(output_path.stem + ".labels.txt"),
                   "\n".join(class_names) + "\n")
    return output_path


def op_names(flatbuffer: bytes) -> list[str]:
    """Builtin op names of a TFLite model (for checks such as 'no SPACE_TO_BATCH_ND')."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=flatbuffer)
    return sorted({op["op_name"] for op in interpreter._get_ops_details()})
