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
