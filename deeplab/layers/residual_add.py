"""The residual sum of the backbones, with an int8 form for quantization-aware training."""

from __future__ import annotations

import keras

from deeplab.layers.conv_bn_act import apply_activation, check_activation
from deeplab.quantization import add_output_quantizer, quantize_output


@keras.saving.register_keras_serializable(package="deeplab")
class ResidualAdd(keras.layers.Add):
    """``keras.layers.Add`` (then an optional activation) whose result is rounded to int8 in
    quantization-aware training (TFLite's ADD, with the activation fused, has its own
    output scale; the TF1 original fake-quantized it too).

    Args:
        activation: None, "relu" or "relu6", applied to the sum (ResNet's unit output).
        **kwargs: ``keras.layers.Add`` arguments.

    Example:
        >>> ResidualAdd(name="add")([keras.ops.ones((1, 2)), keras.ops.ones((1, 2))])
        [[2.0, 2.0]]
    """

    def __init__(self, activation: str | None = None, **kwargs):
        super().__init__(**kwargs)
        self.activation = check_activation(activation, f"ResidualAdd {self.name!r}")
        self.output_quantizer = None  # set by deeplab.quantization.prepare_model

    def call(self, inputs, training=None):
        outputs = apply_activation(super().call(inputs), self.activation)
        return quantize_output(self, outputs, training)

    def get_config(self):
        config = super().get_config()
        config["activation"] = self.activation
        return config

    def add_quantizers(self) -> None:
        """Quantization-aware training: range tracking for the sum."""
        add_output_quantizer(self)
