"""NaN/Inf in a model's or optimizer's variables: never saved, never loaded silently."""

from __future__ import annotations

import tensorflow as tf


def nonfinite_variables(variables) -> list[str]:
    """The paths (or names) of the float variables holding NaN or Inf; one fused check
    first, so a healthy run pays one reduction per save."""
    floats = [v for v in variables if tf.as_dtype(v.dtype).is_floating]
    if not floats:
        return []
    healthy = tf.reduce_all([tf.reduce_all(tf.math.is_finite(v)) for v in floats])
    if bool(healthy):
        return []
    return [getattr(v, "path", v.name) for v in floats
            if not bool(tf.reduce_all(tf.math.is_finite(v)))]


def describe_variables(paths: list[str], shown: int = 3) -> str:
    """``N variables (a, b, c, ...)`` for an error line."""
    more = ", ..." if len(paths) > shown else ""
    plural = "s" if len(paths) != 1 else ""
    return f"{len(paths)} variable{plural} ({', '.join(paths[:shown])}{more})"
