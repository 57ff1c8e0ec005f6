"""Small tensor functions that reproduce the original release's numerics.

The original resized everything with ``align_corners=True`` (TF1 semantics). TF2's
``tf.image.resize`` and Keras' ``Resizing`` use half-pixel centres instead, which shifts
every logit by up to half a feature cell; imported weights would then disagree with the
reference outputs. These helpers call the raw ops with the original flags.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
from collections.abc import Iterator

import tensorflow as tf


def scale_dimension(dim: int, scale: float) -> int:
    """The original's ``scale_dimension``: the size of ``dim`` pixels at ``scale``.

    Sizes of the form ``k * stride + 1`` map exactly onto a strided grid, e.g.
    ``scale_dimension(513, 1 / 16) == 33``.
    """
    return int((float(dim) - 1.0) * scale + 1.0)


def scaled_size(size: tf.Tensor, scale: float) -> tf.Tensor:
    """:func:`scale_dimension` of an int32 size tensor (traceable, dynamic sizes)."""
    return tf.cast((tf.cast(size, tf.float32) - 1.0) * scale + 1.0, tf.int32)


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


_NATIVE_DILATION = contextvars.ContextVar("deeplab_native_dilation", default=False)


@contextlib.contextmanager
def native_dilation() -> Iterator[None]:
    """Traces dilated depthwise convs as one native op, for TFLite conversion only.

    ``DepthwiseConv2dNative`` with ``dilations`` converts to a dilated TFLite
    DEPTHWISE_CONV_2D with BN folded in, but TensorFlow itself runs it only where oneDNN's
    CPU kernels are on (AVX-512 x86 by default): TF's own CPU kernel (AVX2-only x86, ARM,
    ``TF_ENABLE_ONEDNN_OPTS=0``) refuses it and its GPU kernel has no dilation at all. So a
    graph traced inside this context must only be handed to the TFLite converter (or read,
    as the MAdd counter does), never executed by TensorFlow or saved for serving.
    """
    token = _NATIVE_DILATION.set(True)
    try:
        yield
    finally:
        _NATIVE_DILATION.reset(token)


def uses_native_dilation() -> bool:
    """Whether :func:`native_dilation` is active (a TFLite trace is in progress)."""
    return _NATIVE_DILATION.get()


def conv2d(inputs: tf.Tensor, kernel: tf.Tensor, strides=(1, 1), padding="SAME",
           dilations=(1, 1)) -> tf.Tensor:
    """Conv2D with native dilation forward and a gradient that exists on every device.

    The forward dilated ``Conv2D`` runs on every device (TF's own CPU kernel, oneDNN, cuDNN,
    XLA) and is faster than space-to-batch (measured at rate 18 on a 33x33x2048 map: 1.6x
    with TF's own CPU kernel, 5.5x with oneDNN, which skips the taps in the padding). Its
    gradients (``Conv2DBackpropInput`` / ``...Filter``) with dilation > 1 exist only with
    oneDNN or on the GPU: TF's own CPU kernels refuse them. So the gradient is the
    space-to-batch form's, which computes the same function with undilated kernels (its
    forward conv, unused, is pruned from traced graphs).
    """
    strides, dilations = [1, *strides, 1], [1, *dilations, 1]

    def native(x, k):
        return tf.nn.conv2d(x, k, strides, padding, dilations=dilations)

    if max(dilations) == 1 or uses_native_dilation():
        return native(inputs, kernel)

    @tf.custom_gradient
    def conv(x, k):
        def grad(upstream):
            with tf.GradientTape() as tape:
                tape.watch([x, k])
                reference = tf.nn.convolution(x, k, strides[1:3], padding,
                                              dilations=dilations[1:3])
            return tape.gradient(reference, [x, k], output_gradients=upstream)

        return native(x, k), grad

    return conv(inputs, kernel)


def depthwise_conv2d(inputs: tf.Tensor, kernel: tf.Tensor, strides=(1, 1), padding="SAME",
                     dilations=(1, 1)) -> tf.Tensor:
    """Depthwise conv whose dilated form runs on every device.

    Dilated, it is TF's space-to-batch formulation (``SpaceToBatchND`` -> undilated
    ``DepthwiseConv2dNative`` -> ``BatchToSpaceND``), whose kernels and gradients exist on
    every CPU, GPU and TPU / XLA, in every float dtype. Inside :func:`native_dilation` it
    is the single native op instead, which the TFLite converter turns into a dilated
    DEPTHWISE_CONV_2D (no SPACE_TO_BATCH_ND). Both compute the same function.
    """
    strides, dilations = [1, *strides, 1], list(dilations)
    if max(dilations) == 1 or uses_native_dilation():
        return tf.raw_ops.DepthwiseConv2dNative(
            input=inputs, filter=kernel, strides=strides, padding=padding,
            dilations=[1, *dilations, 1])
    return tf.nn.depthwise_conv2d(inputs, kernel, strides, padding, dilations=dilations)
