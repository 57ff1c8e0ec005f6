"""A short text report of a model: layers, parameters and multiply-adds."""

from __future__ import annotations

import io

import keras

from deeplab.analysis.flops import count_madds, count_parameters


def model_report(model: keras.Model, input_size: tuple[int, int], expand: bool = False) -> str:
    """Keras summary (optionally with nested layers) plus parameters and MAdds at a size."""
    buffer = io.StringIO()
    model.summary(print_fn=lambda line, *args, **kwargs: buffer.write(line + "\n"),
                  expand_nested=expand, line_length=110)
    h, w = input_size
    madds = count_madds(model, (1, h, w, 3))
    buffer.write(f"Trainable parameters (conv + BN gamma/beta): {count_parameters(model):,}\n")
    buffer.write(f"Multiply-adds at {h}x{w}: {madds / 1e9:.3f} B\n")
    return buffer.getvalue()
