"""Weights of the original release's TFLite files (BN folded, float or uint8-quantised).

The files keep the original scopes in their tensor names (``MobilenetV2/expanded_conv_9/
project/weights``, ``aspp0/weights``, ``logits/semantic/weights``; the quantised ones join
several names with ``;`` and use ``weights_quant/FakeQuantWithMinMaxVars`` and
``BatchNorm_Fold/bias``). Quantised tensors are dequantised into a float model.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from deeplab.config import ModelConfig
from deeplab.weights.folded import assign_folded, keras_kernel
from deeplab.weights.report import ImportReport
from deeplab.weights.scopes import scope_targets

_WEIGHTS = re.compile(r"^(.*)/(weights|depthwise_weights|weights_quant/FakeQuantWithMinMaxVars)$")
_BIAS = re.compile(r"^(.*)/(Conv2D_bias|depthwise_bias|BatchNorm_Fold/bias|biases)$")


def _interpreter(path: Path):
    from ai_edge_litert.interpreter import Interpreter

    if not path.is_file():
        raise FileNotFoundError(f"TFLite file not found: {path}")
    interpreter = Interpreter(model_path=str(path))
    interpreter.allocate_tensors()
    return interpreter


def _dequantize(array: np.ndarray, detail: dict) -> np.ndarray:
    params = detail.get("quantization_parameters") or {}
    scales = np.asarray(params.get("scales", []), "float64")
    if scales.size == 0 or not np.issubdtype(array.dtype, np.integer):
        return array.astype("float32")
    zero_points = np.asarray(params.get("zero_points", np.zeros_like(scales)), "float64")
    if scales.size > 1:  # per-channel: broadcast along the quantised dimension
        axis = params.get("quantized_dimension", 0)
        shape = [1] * array.ndim
        shape[axis] = scales.size
        scales, zero_points = scales.reshape(shape), zero_points.reshape(shape)
    return ((array.astype("float64") - zero_points) * scales).astype("float32")


def read_folded_layers(path: str | Path) -> dict[str, dict[str, np.ndarray]]:
    """``{scope: {"weights": [out, kh, kw, in] float32, "bias": [out] float32}}``."""
    interpreter = _interpreter(Path(path))
    layers: dict[str, dict[str, np.ndarray]] = {}
    for detail in interpreter.get_tensor_details():
        rank = len(detail["shape"])
        pattern, key = {4: (_WEIGHTS, "weights"), 1: (_BIAS, "bias")}.get(rank, (None, None))
        if pattern is None:
            continue
        for part in detail["name"].split(";"):
            match = pattern.match(part)
            if match:
                array = interpreter.get_tensor(detail["index"])
                layers.setdefault(match.group(1), {})[key] = _dequantize(array, detail)
                break
    return {scope: tensors for scope, tensors in layers.items() if "weights" in tensors}


# Backbone scope in the file → (model_variant, stem channels at depth multiplier 1).
_FILE_BACKBONES = {"MobilenetV2": ("mobilenet_v2", 32.0),
                   "MobilenetEdgeTPU": ("mobilenet_edgetpu", 32.0)}


def infer_model_config(path: str | Path) -> ModelConfig:
    """The ModelConfig of a MobileNetV2 or MobileNet-EdgeTPU DeepLab TFLite file, read from
    its tensor shapes.

    Backbone from the scope of its stem conv (``MobilenetV2/Conv``,
    ``MobilenetEdgeTPU/Conv``), width from that conv's channels (32·depth_multiplier),
    ASPP depth from ``aspp0``, classes from ``logits/semantic``, output stride from the ASPP
    feature size against the input size, atrous branches from ``aspp<i>`` scopes.
    """
    path = Path(path)
    interpreter = _interpreter(path)
    details = interpreter.get_tensor_details()
    input_shape = interpreter.get_input_details()[0]["shape"]
    layers = read_folded_layers(path)
    prefix = next((p for p in _FILE_BACKBONES if f"{p}/Conv" in layers), None)
    if prefix is None:
        raise ValueError(
            f"{path}: no MobilenetV2/Conv or MobilenetEdgeTPU/Conv weights; only the "
            "original release's MobileNetV2 and EdgeTPU DeepLab TFLite files are supported."
        )
    model_variant, stem_channels = _FILE_BACKBONES[prefix]
    feature = next(
        (d["shape"] for d in details if d["name"].split(";")[0] == "aspp0/Relu"), None
    )
    if feature is None:
        raise ValueError(f"{path}: no aspp0/Relu tensor to read the output stride from.")
    height = int(input_shape[1])
    output_stride = (height - 1) // (int(feature[1]) - 1)
    rates = sorted(int(m.group(1)) for s in layers if (m := re.match(r"^aspp(\d+)_", s)))
    if rates:
        raise ValueError(f"{path}: atrous ASPP branches are present; their rates are not "
                         "recorded in the file. Build the model with the rates and use "
                         "import_tflite_weights directly.")
    return ModelConfig(
        model_variant=model_variant,
        num_classes=int(layers["logits/semantic"]["weights"].shape[0]),
        output_stride=output_stride,
        depth_multiplier=layers[f"{prefix}/Conv"]["weights"].shape[0] / stem_channels,
        aspp_convs_filters=int(layers["aspp0"]["weights"].shape[0]),
        crop_size=(height, int(input_shape[2])),
    )


def import_tflite_weights(model, path: str | Path, strict: bool = True) -> ImportReport:
    """Copies the weights of a BN-folded TFLite file into ``model``.

    Each conv gets the file's weights; its BatchNorm is set to an exact identity that adds
    the folded bias (see :func:`deeplab.weights.folded.assign_folded`).

    Raises:
        ValueError: a shape mismatch (always), or with ``strict`` any layer left
            unmatched on either side.
    """
    layers = read_folded_layers(path)
    targets = scope_targets(model)
    matched = sorted(set(layers) & set(targets))
    report = ImportReport(
        source=str(path),
        matched=matched,
        unused_in_file=sorted(set(layers) - set(targets)),
        missing_in_model=sorted(set(targets) - set(layers)),
    )
    if strict and not report.complete:
        raise ValueError(
            "The model does not match the TFLite file (pass strict=False to import what "
            "matches):\n" + report.summary()
        )
    for scope in matched:
        tensors = layers[scope]
        bias = tensors.get("bias")
        if bias is None:
            bias = np.zeros(tensors["weights"].shape[0], "float32")
        assign_folded(targets[scope], keras_kernel(tensors["weights"]), bias)
    return report
