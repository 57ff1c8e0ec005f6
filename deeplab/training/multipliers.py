"""Per-variable gradient multipliers (``train_utils.get_model_gradient_multipliers``)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence


def gradient_multipliers(variable_paths: Iterable[str], last_layer_prefixes: Sequence[str],
                         last_layer_gradient_multiplier: float = 1.0) -> dict[str, float]:
    """Multipliers != 1: biases ×2, last layers × multiplier (biases there × 2·multiplier).

    Scaling gradients equals scaling the learning rate for momentum SGD, which is how the
    original gave biases twice the learning rate.

    Args:
        variable_paths: Keras variable paths (``aspp/aspp0/conv/kernel``).
        last_layer_prefixes: the model's last layers
            (:meth:`deeplab.model.DeepLab.last_layer_prefixes`).
        last_layer_gradient_multiplier: the original's flag.
    """
    last = tuple(last_layer_prefixes)
    multipliers = {}
    for path in variable_paths:
        is_bias = path.endswith("/bias")
        value = 1.0
        if last and path.startswith(last):
            value = last_layer_gradient_multiplier * (2.0 if is_bias else 1.0)
        elif is_bias:
            value = 2.0
        if value != 1.0:
            multipliers[path] = value
    return multipliers
