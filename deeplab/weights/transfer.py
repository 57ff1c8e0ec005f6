"""Weights from one of our models into another by variable path: the same architecture with
a new last layer (other classes), or a model with layers the source lacks."""

from __future__ import annotations

from collections.abc import Sequence


def copy_weights(model, source, skip: Sequence[str] = (),
                 logits_hint: str = "") -> tuple[int, list[str], list[str]]:
    """Copies ``source``'s variables into ``model``'s of the same path; nothing is assigned
    unless every shape matches.

    Args:
        model: the model to fill.
        source: a model holding the weights (its variables are matched by Keras path).
        skip: path prefixes left as they are (e.g. ``model.last_layer_prefixes(True)``).
        logits_hint: what to do when the logits' shapes differ, for the error.

    Returns:
        (variables copied, paths skipped, paths the source does not have).

    Raises:
        ValueError: a shape differs (naming the variable and both shapes).
    """
    available = {v.path: v for v in source.weights}
    logits_prefixes = model.last_layer_prefixes(logits_only=True)
    skip = tuple(skip)
    skipped, missing, assignments = [], [], []
    for variable in model.weights:
        if skip and variable.path.startswith(skip):
            skipped.append(variable.path)
            continue
        if variable.path not in available:
            missing.append(variable.path)
            continue
        value = available[variable.path]
        if tuple(value.shape) != tuple(variable.shape):
            if variable.path.startswith(logits_prefixes):
                raise ValueError(
                    f"{variable.path}: the checkpoint has shape {tuple(value.shape)}, the model "
                    f"{tuple(variable.shape)}. The number of classes differs: {logits_hint}.")
            raise ValueError(
                f"{variable.path}: checkpoint shape {tuple(value.shape)} != model shape "
                f"{tuple(variable.shape)}; the model flags do not match the checkpoint.")
        assignments.append((variable, value))
    for variable, value in assignments:
        variable.assign(value)
    return len(assignments), skipped, missing
