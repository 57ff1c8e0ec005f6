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


def depthwise_conv2d(inputs: tf.Tensor, kernel: tf.Tensor, strides=(1, 1), padding="SAME",
                     dilations=(1, 1)) -> tf.Tensor:
    """Depthwise conv with native dilation in the forward pass and a correct gradient.

    ``DepthwiseConv2dNative`` with ``dilations`` converts to a dilated TFLite
    DEPTHWISE_CONV_2D (``tf.nn.depthwise_conv2d`` lowers to SPACE_TO_BATCH_ND instead),
    but on TF 2.21's CPU kernels its gradient ignores the dilation: the input gradient of a
    rate-6 conv lands at +-1 pixel. The backward pass therefore differentiates the
    space-to-batch formulation, which computes the same function.
    """
    strides, dilations = list(strides), list(dilations)

    def native(x, k):
        return tf.raw_ops.DepthwiseConv2dNative(
            input=x, filter=k, strides=[1, *strides, 1], padding=padding,
            dilations=[1, *dilations, 1])

    if max(dilations) == 1:
        return native(inputs, kernel)
    if inputs.dtype in (tf.float16, tf.float64):
        # No float16/float64 dilated DepthwiseConv2dNative on the CPU; neither is an export
        # dtype (float16 is a training policy, float64 a numerics check), so the
        # space-to-batch form costs nothing there.
        return tf.nn.depthwise_conv2d(inputs, kernel, [1, *strides, 1], padding,
                                      dilations=dilations)

    @tf.custom_gradient
    def conv(x, k):
        def grad(upstream):
            with tf.GradientTape() as tape:
                tape.watch([x, k])
                reference = tf.nn.depthwise_conv2d(x, k, [1, *strides, 1], padding,
                                                   dilations=dilations)
            return tape.gradient(reference, [x, k], output_gradients=upstream)

        return native(x, k), grad

    return conv(inputs, kernel)
