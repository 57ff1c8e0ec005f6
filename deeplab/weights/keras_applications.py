"""ImageNet MobileNetV2 weights of ``keras.applications`` as backbone initialisation."""

from __future__ import annotations

import re
from pathlib import Path

import keras

from deeplab.weights.report import ImportReport


def keras_layer_name(scope: str) -> str | None:
    """Our MobileNetV2 layer name → the Keras applications name (conv; BN adds ``_BN``).

    ``Conv`` → ``Conv1`` (BN ``bn_Conv1``), ``expanded_conv.depthwise`` →
    ``expanded_conv_depthwise``, ``expanded_conv_5.expand`` → ``block_5_expand``.
    """
    if scope == "Conv":
        return "Conv1"
    match = re.fullmatch(r"expanded_conv(?:_(\d+))?\.(expand|depthwise|project)", scope)
    if not match:
        return None
    index, part = match.groups()
    return f"expanded_conv_{part}" if index is None else f"block_{index}_{part}"


def _bn_name(conv_name: str) -> str:
    return "bn_Conv1" if conv_name == "Conv1" else f"{conv_name}_BN"


def import_keras_mobilenet_v2(backbone, weights_path: str | Path) -> ImportReport:
    """Loads a local ``keras.applications.MobileNetV2`` weights file into our MobileNetV2.

    The file is the one ``keras.applications.MobileNetV2(weights="imagenet",
    include_top=False)`` downloads (``mobilenet_v2_weights_tf_dim_ordering_tf_kernels_
    <alpha>_224_no_top.h5``); pass its local path. Both networks expect inputs in [-1, 1]
    and use SAME-equivalent padding, so the weights transfer unchanged.
    """
    weights_path = Path(weights_path)
    if not weights_path.is_file():
        raise FileNotFoundError(f"Keras MobileNetV2 weights not found: {weights_path}")
    alpha = backbone.get_config()["depth_multiplier"]
    reference = keras.applications.MobileNetV2(
        input_shape=(224, 224, 3), alpha=alpha, include_top=False, weights=str(weights_path)
    )
    available = {layer.name: layer for layer in reference.layers}
    matched, missing = [], []
    for layer in backbone.layers:
        conv_name = keras_layer_name(layer.name)
        if conv_name is None:
            continue
        if conv_name not in available:
            missing.append(layer.name)
            continue
        source_conv, source_bn = available[conv_name], available[_bn_name(conv_name)]
        layer.conv.set_weights(source_conv.get_weights())
        layer.bn.set_weights(source_bn.get_weights())
        matched.append(layer.name)
    unused = sorted(
        name for name in available
        if name in ("Conv_1", "Conv_1_bn")  # the 1280-channel layer_19 DeepLab drops
    )
    return ImportReport(str(weights_path), matched, unused, missing,
                        notes=["Conv_1 (layer_19, 1280 channels) is not part of DeepLab"])
