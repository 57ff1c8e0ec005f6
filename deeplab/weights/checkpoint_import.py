"""Weights of the original release's TF1 checkpoints (model-zoo tarballs), by variable name.

A slim checkpoint stores ``<scope>/weights`` (or ``depthwise_weights``) in the same
[kh, kw, in, out] / [kh, kw, channels, multiplier] layout Keras uses, BatchNorm as
``<scope>/BatchNorm/{gamma,beta,moving_mean,moving_variance}`` and the logits bias as
``logits/semantic/biases``. The real model-zoo tarballs could not be downloaded here; the
mapping is tested with checkpoints written in the original's names and shapes.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from deeplab.weights.report import ImportReport
from deeplab.weights.scopes import BN_PARAMS, scope_targets

# Training state the import skips without complaint.
_OPTIMIZER_SUFFIXES = ("/Momentum", "/Adam", "/Adam_1", "/ExponentialMovingAverage")
_TRAINING_STATE = ("global_step",)



def _is_training_state(name: str) -> bool:
    return name in _TRAINING_STATE or name.endswith(_OPTIMIZER_SUFFIXES)


def _excluded(scope: str, exclude_scopes: Sequence[str]) -> bool:
    return any(scope == s or scope.startswith(s) for s in exclude_scopes)


def import_tf1_checkpoint(
    model,
    checkpoint_path: str,
    exclude_scopes: Sequence[str] = (),
    strict: bool = False,
) -> ImportReport:
    """Copies the variables of a TF1 DeepLab checkpoint into ``model`` by name.

    Args:
        model: a :class:`deeplab.model.DeepLab`.
        checkpoint_path: checkpoint prefix (``.../model.ckpt-30000``) or its directory.
        exclude_scopes: scopes (prefixes) not to import, e.g. ``model.last_layer_original_scopes()``
            or ``("logits",)`` when the number of classes changes.
        strict: raise when a model layer finds no weights in the file.

    Raises:
        ValueError: a variable's shape differs from the model's (always an error: it
            means the model config does not match the checkpoint), or with ``strict``
            missing layers.
    """
    try:
        reader = tf.train.load_checkpoint(checkpoint_path)
    except (tf.errors.NotFoundError, ValueError) as error:
        raise FileNotFoundError(
            f"Cannot read a TF checkpoint at {checkpoint_path!r}: give the prefix "
            "(model.ckpt-30000, without .index / .data-*) or its directory."
        ) from error
    shapes = reader.get_variable_to_shape_map()
    used: set[str] = set()
    matched, missing, notes, without_gamma = [], [], [], []

    def take(name, expected_shape, scope):
        if tuple(shapes[name]) != tuple(expected_shape):
            raise ValueError(
                f"{name}: checkpoint shape {tuple(shapes[name])} != model shape "
                f"{tuple(expected_shape)} ({scope}). The model config does not match the "
                "checkpoint (model_variant, num_classes, depth_multiplier, atrous rates?)."
            )
        used.add(name)
        return reader.get_tensor(name)

    writes = []  # validate everything before touching the model
    for scope, target in scope_targets(model).items():
        if _excluded(scope, exclude_scopes):
            continue
        kernel_name = target.kernel_variable
        if kernel_name not in shapes:
            missing.append(scope)
            continue
        writes.append((target.conv.kernel, take(kernel_name, target.conv.kernel.shape, scope)))
        if target.bn is None:
            bias_name = f"{target.scope}/biases"
            if bias_name in shapes and target.conv.bias is not None:
                writes.append((target.conv.bias, take(bias_name, target.conv.bias.shape, scope)))
        else:
            for param in BN_PARAMS:
                variable = getattr(target.bn, param)
                name = f"{target.bn_prefix}/{param}"
                if name in shapes:
                    writes.append((variable, take(name, variable.shape, scope)))
                elif param == "gamma":
                    # slim batch_norm(scale=False), e.g. MobileNetV2: gamma is 1.
                    writes.append((variable, np.ones(variable.shape, "float32")))
                    without_gamma.append(scope)
                else:
                    raise ValueError(f"{name} is missing from {checkpoint_path}.")
        matched.append(scope)
    skipped = sorted(n for n in shapes if n not in used and _is_training_state(n))
    unused = sorted(n for n in shapes if n not in used and not _is_training_state(n)
                    and not _excluded(n, exclude_scopes))
    if without_gamma:
        notes.append(f"{len(without_gamma)} BatchNorms have no gamma (slim scale=False, as in "
                     f"MobileNetV2), set to 1: {without_gamma[0]}, ...")
    if skipped:
        notes.append(f"skipped {len(skipped)} optimizer / step variables")
    report = ImportReport(str(checkpoint_path), sorted(matched), unused, sorted(missing), notes)
    if strict and missing:
        raise ValueError("Layers without weights in the checkpoint:\n" + report.summary())
    for variable, value in writes:
        variable.assign(np.asarray(value, dtype="float32"))
    return report
