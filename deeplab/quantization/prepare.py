"""Gives a built model the range trackers of quantization-aware training."""

from __future__ import annotations

import contextlib

import keras

from deeplab.quantization.activation_quantizer import ActivationQuantizer
from deeplab.quantization.simulation import is_simulating

OUTPUT_QUANTIZER = "output_quantizer"


def prepare_model(model: keras.Layer) -> None:
    """Makes every layer of ``model`` that has a quantization-aware form simulate int8.

    A layer has one when it defines ``add_quantizers()`` (the conv units, the residual
    adds, the preprocessing, the logits conv), and none when it says
    ``quantization_aware = False`` or has weights of its own; it then adds its range trackers, which
    checkpoints save beside the float weights under the layer's path (a float checkpoint
    still loads: the ranges are then learned from the first quantized batch). The model is
    already built, so each layer is unlocked for the addition, as Keras' own
    ``Layer.quantize`` does.

    Raises:
        ValueError: a layer with weights and no quantization-aware form (named, with what
            to use instead): the int8 model would otherwise silently keep it in float.
    """
    unsupported = []
    _prepare(model, unsupported)
    if unsupported:
        raise ValueError(
            "--quantize_delay_step: quantization-aware training has no int8 form for "
            f"{', '.join(sorted(set(unsupported)))}; it supports the Xception, MobileNetV2, "
            "MobileNet-EdgeTPU and ResNet backbones with the ASPP or DPC head (or none), the "
            "concat decoder and the bilinear upsampler, at one input scale. Leave "
            "--quantize_delay_step at -1 for this model, or quantize it after training "
            "(convert_to_tflite --quantization=int8 with calibration images).")


def _prepare(layer, unsupported: list) -> None:
    if getattr(layer, "quantization_aware", True) is False:
        unsupported.append(f"{layer.name} ({type(layer).__name__})")
        return
    prepared = hasattr(layer, "add_quantizers")
    if prepared:
        with _unlocked(layer):
            layer.add_quantizers()
        if getattr(layer, "quantized_as_one_unit", False):
            return
    children = [c for c in layer._layers if not isinstance(c, ActivationQuantizer)]
    in_children = {id(v) for child in children for v in child.weights}
    if not prepared and any(id(v) not in in_children for v in layer.weights):
        unsupported.append(f"{layer.name} ({type(layer).__name__})")
        return
    for child in children:
        _prepare(child, unsupported)


@contextlib.contextmanager
def _unlocked(layer):
    locked = layer._tracker.locked
    layer._tracker.unlock()
    try:
        yield
    finally:
        if locked:
            layer._tracker.lock()


def add_output_quantizer(layer, **kwargs) -> None:
    """Gives ``layer`` an ``output_quantizer`` (an :class:`ActivationQuantizer`)."""
    layer.output_quantizer = build_in_scope(layer, ActivationQuantizer(name=OUTPUT_QUANTIZER,
                                                                       **kwargs))


def build_in_scope(parent, quantizer: ActivationQuantizer) -> ActivationQuantizer:
    """Builds ``quantizer`` under ``parent``'s path, so that its variables are
    ``<parent path>/<name>/min`` (unique checkpoint keys), as if built with the parent."""
    with contextlib.ExitStack() as scopes:
        for name in parent.path.split("/"):
            scopes.enter_context(keras.name_scope(name))
        quantizer.build()
    return quantizer


def simulates(layer) -> bool:
    """Whether ``layer`` was prepared and simulation is on for this call."""
    return getattr(layer, "output_quantizer", None) is not None and is_simulating()


def quantize_output(layer, outputs, training=None):
    """``outputs`` through the layer's output quantizer when it simulates, else as they are."""
    if simulates(layer):
        return layer.output_quantizer(outputs, training=training)
    return outputs


def quantizers(model: keras.Layer) -> list[ActivationQuantizer]:
    """Every range tracker of a prepared model (none for a float one)."""
    return [layer for layer in model._flatten_layers()
            if isinstance(layer, ActivationQuantizer) and layer.fixed_range is None]


def unlearned_quantizers(model: keras.Layer) -> list[str]:
    """Paths of the range trackers that never saw a training batch (their range is the
    initial [-6, 6]): a checkpoint from before ``--quantize_delay_step``."""
    return [q.path for q in quantizers(model) if float(q.observed.numpy()) == 0.0]


def require_learned_ranges(model: keras.Layer) -> None:
    """ValueError when a quantization-aware model's checkpoint never learned its ranges
    (an int8 export would use the initial [-6, 6] everywhere)."""
    unlearned = unlearned_quantizers(model)
    if unlearned:
        raise ValueError(
            f"the checkpoint has no learned quantization ranges ({len(unlearned)} activations, "
            f"e.g. {unlearned[0]}): it was saved before --quantize_delay_step="
            f"{model.config.quantize_delay_step}. Export a checkpoint from after that step, or "
            "give --quantize_delay_step=-1 to export the float model.")


def describe_quantization(model: keras.Layer) -> str | None:
    """One line for inference binaries: what a quantization-aware model runs (None for a
    float model)."""
    trackers = quantizers(model)
    if not trackers:
        return None
    unlearned = unlearned_quantizers(model)
    if unlearned:
        return (f"warning: quantization-aware model whose checkpoint predates "
                f"--quantize_delay_step={model.config.quantize_delay_step}: {len(unlearned)} "
                f"of {len(trackers)} activation ranges are still the initial [-6, 6] (as the "
                "original's would be); the int8 simulation runs with them")
    return (f"quantization-aware model: running its int8 simulation ({len(trackers)} learned "
            "activation ranges), which predicts the int8 TFLite model")
