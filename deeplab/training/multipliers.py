"""Per-variable gradient multipliers (``train_utils.get_model_gradient_multipliers``)."""

from __future__ import annotations

# Our variable-path prefixes of the original's get_extra_layer_scopes ("last layers"):
# logits; image_pooling / aspp* / concat_projection live in the ASPP (or KSAC) layer; the
# decoder; DUC replaces the logits layer under the same name.
LOGITS_PREFIXES = ("logits.semantic/",)
LAST_LAYER_PREFIXES = LOGITS_PREFIXES + ("aspp/", "ksac/", "decoder/")


def last_layer_prefixes(logits_only: bool) -> tuple[str, ...]:
    """Variable-path prefixes of the last layers (``--last_layers_contain_logits_only``)."""
    return LOGITS_PREFIXES if logits_only else LAST_LAYER_PREFIXES


def gradient_multipliers(variable_paths, last_layer_gradient_multiplier: float = 1.0,
                         last_layers_contain_logits_only: bool = False) -> dict[str, float]:
    """Multipliers != 1: biases ×2, last layers × multiplier (biases there × 2·multiplier).

    Scaling gradients equals scaling the learning rate for momentum SGD, which is how the
    original gave biases twice the learning rate.
    """
    last = last_layer_prefixes(last_layers_contain_logits_only)
    multipliers = {}
    for path in variable_paths:
        is_bias = path.endswith("/bias")
        in_last = path.startswith(last)
        value = 1.0
        if in_last:
            value = last_layer_gradient_multiplier * (2.0 if is_bias else 1.0)
        elif is_bias:
            value = 2.0
        if value != 1.0:
            multipliers[path] = value
    return multipliers
