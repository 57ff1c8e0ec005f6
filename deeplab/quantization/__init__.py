"""Quantization-aware training: fake-quantized int8 arithmetic simulated in float.

``prepare_model`` gives a built model its range trackers; the layers that know how to
quantize themselves (``add_quantizers``) then simulate the int8 TFLite kernels whenever
``simulation`` is on (the default for a prepared model).
"""

from deeplab.quantization.activation_quantizer import ActivationQuantizer
from deeplab.quantization.prepare import (
    add_output_quantizer,
    build_in_scope,
    describe_quantization,
    prepare_model,
    quantize_output,
    quantizers,
    require_learned_ranges,
    simulates,
    unlearned_quantizers,
)
from deeplab.quantization.simulation import (
    fake_quant_weights,
    fold_batch_norm,
    is_simulating,
    simulation,
)

__all__ = [
    "ActivationQuantizer",
    "add_output_quantizer",
    "build_in_scope",
    "describe_quantization",
    "fake_quant_weights",
    "fold_batch_norm",
    "is_simulating",
    "prepare_model",
    "quantize_output",
    "quantizers",
    "require_learned_ranges",
    "simulates",
    "simulation",
    "unlearned_quantizers",
]
