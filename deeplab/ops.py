"""Small tensor functions that reproduce the original release's numerics.

The original resized everything with ``align_corners=True`` (TF1 semantics). TF2's
``tf.image.resize`` and Keras' ``Resizing`` use half-pixel centres instead, which shifts
every logit by up to half a feature cell; imported weights would then disagree with the
reference outputs. These helpers call the raw ops with the original flags.
"""

from __future__ import annotations

import math

import tensorflow as tf


def scale_dimension(dim: int, scale: float) -> int:
    """The original's ``scale_dimension``: the size of ``dim`` pixels at ``scale``.

    Sizes of the form ``k * stride + 1`` map exactly onto a strided grid, e.g.
    ``scale_dimension(513, 1 / 16) == 33``.
    """
    return int((float(dim) - 1.0) * scale + 1.0)


def resize_bilinear(images: tf.Tensor, size) -> tf.Tensor:
    """Bilinear resize with ``align_corners=True``; keeps the input dtype.

    The raw op always returns float32, so under ``mixed_bfloat16`` the result is cast
    back to the compute dtype of the caller.
    """
    out = tf.raw_ops.ResizeBilinear(
        images=images, size=tf.cast(size, tf.int32), align_corners=True, half_pixel_centers=False
    )
    return tf.cast(out, images.dtype)


def resize_nearest(images: tf.Tensor, size) -> tf.Tensor:
    """Nearest-neighbour resize with ``align_corners=True`` (used for labels)."""
    return tf.raw_ops.ResizeNearestNeighbor(
        images=images, size=tf.cast(size, tf.int32), align_corners=True, half_pixel_centers=False
    )


def fixed_padding_amounts(kernel_size: int, rate: int = 1) -> tuple[int, int]:
    """Explicit (begin, end) padding that makes a strided conv equal stride 1 + subsampling.

    TF's SAME padding puts the extra pixel at the end for even inputs, so a stride-2 SAME
    conv samples a grid shifted by one pixel from the stride-1 result (the original's
    xception test shows ``[[48, 37], [37, 22]]`` instead of ``[[14, 43], [43, 84]]``).
    """
    effective = kernel_size + (kernel_size - 1) * (rate - 1)
    total = effective - 1
    begin = total // 2
    return begin, total - begin


def same_output_size(size: int | None, stride: int) -> int | None:
    """Output size of a SAME (or fixed-padded) conv: ``ceil(size / stride)``."""
    return None if size is None else int(math.ceil(size / stride))
