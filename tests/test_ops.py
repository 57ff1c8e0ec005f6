"""Numerics of the original release: scale_dimension, align-corners resizes, fixed padding."""

from __future__ import annotations

import numpy as np
import pytest

from deeplab.ops import fixed_padding_amounts, resize_bilinear, resize_nearest, scale_dimension


@pytest.mark.parametrize(
    "dim, scale, expected",
    [(321, 0.5, 161), (321, 0.6, 193), (321, 0.75, 241), (513, 1 / 16, 33), (513, 1 / 8, 65),
     (513, 1 / 4, 129), (769, 1 / 16, 49), (1025, 1 / 16, 65), (2049, 1 / 16, 129)],
)
def test_scale_dimension(dim, scale, expected):
    assert scale_dimension(dim, scale) == expected


def test_resize_bilinear_aligns_corners():
    x = np.array([0.0, 10.0], "float32").reshape(1, 1, 2, 1)
    out = np.asarray(resize_bilinear(x, [1, 5]))[0, 0, :, 0]
    # align_corners: the end pixels map onto each other; half-pixel would give 0, 1.5, ...
    np.testing.assert_allclose(out, [0.0, 2.5, 5.0, 7.5, 10.0])


def test_resize_nearest_aligns_corners_and_keeps_dtype():
    labels = np.array([[1, 2, 3]], "int32").reshape(1, 1, 3, 1)
    out = np.asarray(resize_nearest(labels, [1, 5]))[0, 0, :, 0]
    np.testing.assert_array_equal(out, [1, 2, 2, 3, 3])
    assert out.dtype == np.int32


def test_resize_keeps_bfloat16():
    import tensorflow as tf

    x = tf.ones((1, 2, 2, 1), tf.bfloat16)
    assert resize_bilinear(x, [4, 4]).dtype == tf.bfloat16


@pytest.mark.parametrize(
    "kernel, rate, expected", [(3, 1, (1, 1)), (7, 1, (3, 3)), (3, 2, (2, 2)), (2, 1, (0, 1))]
)
def test_fixed_padding(kernel, rate, expected):
    assert fixed_padding_amounts(kernel, rate) == expected


# === Atrous convs that run on every device ===
def _graph_ops(function, *specs):
    from deeplab.analysis.flops import _walk

    return list(_walk(function.get_concrete_function(*specs).graph))


def _reference_and_gradients(reference, x, kernel, rate):
    """Forward and gradients of sum(y·sin y) in float64 through the space-to-batch form."""
    import tensorflow as tf

    x, kernel = tf.constant(x), tf.constant(kernel)
    with tf.GradientTape() as tape:
        tape.watch([x, kernel])
        y = reference(x, kernel, rate)
        objective = tf.reduce_sum(y * tf.sin(y))
    return [y.numpy(), *[g.numpy() for g in tape.gradient(objective, [x, kernel])]]


def _atrous_cases():
    import tensorflow as tf

    from deeplab.ops import conv2d, depthwise_conv2d

    return {
        "conv2d": (lambda x, k, r: conv2d(x, k, dilations=(r, r)), (3, 3, 4, 3),
                   lambda x, k, r: tf.nn.convolution(x, k, 1, "SAME", dilations=r)),
        "depthwise": (lambda x, k, r: depthwise_conv2d(x, k, dilations=(r, r)), (3, 3, 4, 1),
                      lambda x, k, r: tf.nn.depthwise_conv2d(x, k, [1] * 4, "SAME",
                                                             dilations=[r, r])),
    }


@pytest.mark.parametrize("op", ["conv2d", "depthwise"])
@pytest.mark.parametrize("dtype, tolerance",
                         [("float32", 1e-5), ("float16", 2e-2), ("bfloat16", 8e-2),
                          ("float64", 1e-12)])
@pytest.mark.parametrize("mode", ["eager", "function", "xla"])
def test_atrous_convs_and_gradients_run_and_match_space_to_batch(op, dtype, tolerance, mode):
    """Forward and both gradients in every float dtype, eager / tf.function / XLA.

    On TensorFlow's portable kernels (TF_ENABLE_ONEDNN_OPTS=0, ARM, AVX2-only x86) a native
    dilated DepthwiseConv2dNative has no kernel and Conv2D's dilated gradients none either.
    """
    import tensorflow as tf

    ours, kernel_shape, reference = _atrous_cases()[op]
    rng = np.random.default_rng(0)
    x, kernel = rng.normal(size=(2, 17, 17, 4)), rng.normal(size=kernel_shape)
    want = _reference_and_gradients(reference, x, kernel, 3)

    def step(x, kernel):
        with tf.GradientTape() as tape:
            tape.watch([x, kernel])
            y = ours(x, kernel, 3)
            y64 = tf.cast(y, tf.float64)
            objective = tf.reduce_sum(y64 * tf.sin(y64))
        return [y, *tape.gradient(objective, [x, kernel])]

    run = step if mode == "eager" else tf.function(step, jit_compile=mode == "xla")
    got = run(tf.constant(x, dtype), tf.constant(kernel, dtype))
    assert got[0].dtype == dtype
    for value, expected in zip(got, want):
        error = np.abs(np.asarray(tf.cast(value, tf.float64)) - expected).max()
        assert error <= tolerance * np.abs(expected).max()


def test_dilated_convs_trace_portable_ops_unless_tracing_for_tflite():
    import tensorflow as tf

    from deeplab.ops import conv2d, depthwise_conv2d, native_dilation, uses_native_dilation

    def both(x):
        return (depthwise_conv2d(x, tf.ones((3, 3, 4, 1)), dilations=(2, 2))
                + conv2d(x, tf.ones((3, 3, 4, 4)), dilations=(2, 2)))

    spec = tf.TensorSpec((1, 9, 9, 4), tf.float32)

    def census(function):
        ops = _graph_ops(function, spec)
        dilated = {o.type for o in ops if o.type in ("Conv2D", "DepthwiseConv2dNative")
                   and max(o.get_attr("dilations")) > 1}
        return dilated, sum(o.type == "SpaceToBatchND" for o in ops)

    # Dilated Conv2D runs everywhere forward; its gradient goes through space-to-batch.
    assert census(tf.function(both)) == ({"Conv2D"}, 1)
    with native_dilation():
        assert uses_native_dilation()
        assert census(tf.function(both)) == ({"Conv2D", "DepthwiseConv2dNative"}, 0)
    assert not uses_native_dilation()
    with pytest.raises(RuntimeError), native_dilation():
        raise RuntimeError("the context is left even on errors")
    assert not uses_native_dilation()
