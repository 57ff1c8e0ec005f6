"""Layers: exact values from the original's tests, parameter sharing, saving, mixed precision."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from layer_test_utils import random_inputs, run_layer_test

from deeplab.analysis.flops import count_madds
from deeplab.layers import (
    ASPP,
    DUC,
    KSAC,
    AtrousConv2D,
    AtrousDepthwiseConv2D,
    AtrousSeparableConv,
    BatchNorm,
    ConvBNAct,
    Decoder,
    Preprocess,
    ResizeLike,
)
from deeplab.layers.batch_norm import synchronized_moments
from deeplab.layers.norm_options import NormOptions
from deeplab.ops import resize_bilinear


def ramp(n):
    """The original's ``create_test_input``: x[i, j] = i + j."""
    return (np.arange(n)[:, None] + np.arange(n)[None, :]).astype("float32")


def conv_weights(layer):
    return sum(int(np.prod(w.shape)) for w in layer.trainable_weights if len(w.shape) == 4)


# === Exact values of the original's xception_test ===
@pytest.mark.parametrize(
    "stride, explicit, expected",
    [
        (1, True, [[14, 28, 43, 26], [28, 48, 66, 37], [43, 66, 84, 46], [26, 37, 46, 22]]),
        (2, True, [[14, 43], [43, 84]]),
        (2, False, [[48, 37], [37, 22]]),  # TF SAME padding: the misaligned grid
    ],
)
def test_separable_conv_ramp_values(stride, explicit, expected):
    layer = AtrousSeparableConv(
        1, strides=stride, explicit_padding=explicit, activation=None, use_batch_norm=False
    )
    layer.build((1, 4, 4, 1))
    layer.depthwise.conv.kernel.assign(ramp(3).reshape(3, 3, 1, 1))
    layer.pointwise.conv.kernel.assign(np.ones((1, 1, 1, 1), "float32"))
    out = layer(ramp(4).reshape(1, 4, 4, 1))
    np.testing.assert_array_equal(np.asarray(out)[0, :, :, 0], expected)


def test_strided_fixed_padding_equals_subsampled_stride1_on_odd_input():
    x = random_inputs((1, 5, 5, 3))
    dense = AtrousConv2D(4, 3, explicit_padding=True, use_bias=False)
    strided = AtrousConv2D(4, 3, strides=2, explicit_padding=True, use_bias=False)
    dense(x)
    strided(x)
    strided.set_weights(dense.get_weights())
    np.testing.assert_allclose(np.asarray(strided(x)), np.asarray(dense(x))[:, ::2, ::2], atol=1e-5)


def test_dilation_matches_keras_reference():
    x = random_inputs((2, 17, 17, 6))
    ours = AtrousConv2D(5, 3, dilation_rate=4, use_bias=False)
    ref = keras.layers.Conv2D(5, 3, dilation_rate=4, padding="same", use_bias=False)
    ours(x)
    ref(x)
    ref.set_weights(ours.get_weights())
    np.testing.assert_allclose(np.asarray(ours(x)), np.asarray(ref(x)), atol=1e-4)

    ours_dw = AtrousDepthwiseConv2D(3, dilation_rate=3, use_bias=False)
    ref_dw = keras.layers.DepthwiseConv2D(3, dilation_rate=3, padding="same", use_bias=False)
    ours_dw(x)
    ref_dw(x)
    ref_dw.set_weights(ours_dw.get_weights())
    np.testing.assert_allclose(np.asarray(ours_dw(x)), np.asarray(ref_dw(x)), atol=1e-4)


@pytest.mark.parametrize("layer_cls", [AtrousConv2D, AtrousDepthwiseConv2D])
def test_dilated_conv_gradients_match_the_keras_reference(layer_cls):
    """Both gradients, on every kernel set (TF's own CPU kernels have no dilated ones)."""
    x = tf.constant(random_inputs((1, 17, 17, 4)))
    ours = layer_cls(**({"filters": 3} if layer_cls is AtrousConv2D else {}), kernel_size=3,
                     dilation_rate=6, use_bias=False)
    reference_cls = (keras.layers.Conv2D if layer_cls is AtrousConv2D
                     else keras.layers.DepthwiseConv2D)
    reference = reference_cls(**({"filters": 3} if layer_cls is AtrousConv2D else {}),
                              kernel_size=3, dilation_rate=6, padding="same", use_bias=False)
    ours(x)
    reference(x)
    reference.set_weights(ours.get_weights())
    grads = []
    for layer in (ours, reference):
        with tf.GradientTape() as tape:
            tape.watch(x)
            centre = layer(x)[0, 8, 8]
        grads.append(tape.gradient(centre, [x, layer.trainable_weights[0]]))
    for got, want in zip(*grads):
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), atol=1e-5)
    # The centre output sees the input at offsets 0 and +-6 only.
    reached = np.argwhere(np.abs(np.asarray(grads[0][0])[0].sum(-1)) > 0).tolist()
    assert reached == [[r, c] for r in (2, 8, 14) for c in (2, 8, 14)]


def test_strided_atrous_conv_is_rejected():
    with pytest.raises(ValueError, match="strides.*dilation_rate"):
        AtrousConv2D(4, 3, strides=2, dilation_rate=2)
    with pytest.raises(ValueError, match="strides.*dilation_rate"):
        AtrousDepthwiseConv2D(3, strides=2, dilation_rate=2)


def test_separable_conv_activation_placement():
    x = random_inputs((1, 6, 6, 4))
    kwargs = dict(filters=3, use_batch_norm=False, activation="relu")
    inside = AtrousSeparableConv(activation_placement="inside", **kwargs)
    before = AtrousSeparableConv(activation_placement="before", **kwargs)
    inside(x)
    before(x)
    before.set_weights(inside.get_weights())
    # "inside" ends with a ReLU; "before" ends with the linear pointwise conv.
    assert np.min(np.asarray(inside(x))) >= 0
    dw, dw_b, pw, pw_b = [w for w in inside.get_weights()]
    pre = np.maximum(x, 0)
    depthwise = tf.nn.depthwise_conv2d(pre, dw, [1, 1, 1, 1], "SAME") + dw_b
    expected = tf.nn.conv2d(depthwise, pw, 1, "SAME") + pw_b
    np.testing.assert_allclose(np.asarray(before(x)), np.asarray(expected), atol=1e-5)
    with pytest.raises(ValueError, match="activation_placement"):
        AtrousSeparableConv(3, activation_placement="after")


def test_synchronized_batch_norm_variance_survives_a_large_mean():
    """E[x²] − E[x]² cancels in float32 when |mean| ≫ std; the two-pass form does not."""
    rng = np.random.default_rng(0)
    x = (1000.0 + 0.01 * rng.standard_normal((2, 8, 8, 3))).astype("float32")
    expected = x.astype("float64").var(axis=(0, 1, 2))
    mean, variance, count = synchronized_moments(tf.constant(x), [0, 1, 2],
                                                 tf.distribute.get_replica_context())
    assert float(count) == 2 * 8 * 8
    np.testing.assert_allclose(np.asarray(mean), x.astype("float64").mean(axis=(0, 1, 2)),
                               rtol=1e-6)
    np.testing.assert_allclose(np.asarray(variance), expected, rtol=1e-3)
    one_pass = np.mean(np.square(x), axis=(0, 1, 2)) - np.square(np.mean(x, axis=(0, 1, 2)))
    assert np.abs(one_pass - expected).max() > 10 * expected.max()  # what Keras' form gives
    bn = BatchNorm(synchronized=True, epsilon=1e-9, center=False, scale=False)
    normalised = np.asarray(bn(x, training=True))
    np.testing.assert_allclose(normalised.std(axis=(0, 1, 2)), 1.0, rtol=1e-3)


def test_batch_norm_frozen_statistics_keep_gamma_trainable():
    bn = BatchNorm(update_statistics=False, momentum=0.5)
    x = random_inputs((4, 3, 3, 2), scale=5.0) + 10.0
    with tf.GradientTape() as tape:
        y = bn(x, training=True)
        loss = tf.reduce_sum(y)
    grads = tape.gradient(loss, bn.trainable_weights)
    # Moving statistics untouched, output normalised with them (mean 0, var 1).
    np.testing.assert_array_equal(np.asarray(bn.moving_mean), [0.0, 0.0])
    np.testing.assert_allclose(np.asarray(y), x / np.sqrt(1 + bn.epsilon), rtol=1e-5)
    assert len(bn.trainable_weights) == 2 and all(g is not None for g in grads)
    live = BatchNorm(momentum=0.5)
    live(x, training=True)
    assert np.all(np.asarray(live.moving_mean) > 4.0)


def test_frozen_batch_norm_in_training_subtracts_the_mean_first():
    """fine_tune_batch_norm=False: (x - mean) * gamma / sqrt(var + eps) + beta, as the
    original's fused kernel. With |mean| >> std Keras' x * s + (beta - mean * s) loses the
    digits that the output and the gamma/beta gradients are made of."""
    rng = np.random.default_rng(5)
    x = (1000.0 + 0.01 * rng.standard_normal((2, 4, 4, 3))).astype("float32")
    bn = BatchNorm(update_statistics=False, epsilon=0.0)
    bn.build(x.shape)
    bn.moving_mean.assign([1000.0] * 3)
    bn.moving_variance.assign([1e-4] * 3)
    with tf.GradientTape() as tape:
        y = bn(x, training=True)
        loss = tf.reduce_sum(y * tf.constant(rng.standard_normal(x.shape), tf.float32))
    exact = (x.astype("float64") - 1000.0) / 0.01
    assert np.abs(np.asarray(y) - exact).max() < 1e-3
    keras_form = x * np.float32(100.0) + np.float32(-1000.0 * 100.0)
    assert np.abs(keras_form - exact).max() > 1e-3  # what the Keras form would give
    gamma_grad = tape.gradient(loss, bn.gamma)
    assert np.all(np.isfinite(np.asarray(gamma_grad)))


def test_batch_norm_moving_variance_takes_the_unbiased_variance_on_a_1x1_input():
    """The image-pooling case: one value per image, n = batch. By hand, batch 2 with the
    values 1 and 3 in channel 0 and 2, 2 in channel 1: mean (2, 2), biased variance (1, 0),
    unbiased (2, 0); momentum 0.5 from (0, 0) and (1, 1): mean (1, 1), variance
    0.5 * 1 + 0.5 * (2, 0) = (1.5, 0.5). Keras' own layer would give (1.0, 0.5)."""
    x = tf.constant([[[[1.0, 2.0]]], [[[3.0, 2.0]]]])
    bn = BatchNorm(momentum=0.5, epsilon=0.0, center=False, scale=False)
    y = bn(x, training=True)
    np.testing.assert_allclose(np.asarray(bn.moving_mean), [1.0, 1.0])
    np.testing.assert_allclose(np.asarray(bn.moving_variance), [1.5, 0.5])
    # The output is normalised with the biased variance, as before.
    np.testing.assert_allclose(np.asarray(y)[:, 0, 0, 0], [-1.0, 1.0], rtol=1e-6)
    keras_bn = keras.layers.BatchNormalization(momentum=0.5, epsilon=0.0)
    keras_bn(x, training=True)
    np.testing.assert_allclose(np.asarray(keras_bn.moving_variance), [1.0, 0.5])


def test_batch_norm_bessel_factor_counts_batch_height_width_and_one_value_is_kept():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 3, 5, 4)).astype("float32")
    bn = BatchNorm(momentum=0.9)
    bn(x, training=True)
    n = 2 * 3 * 5
    expected = 0.9 + 0.1 * x.var(axis=(0, 1, 2)) * n / (n - 1)
    np.testing.assert_allclose(np.asarray(bn.moving_variance), expected, rtol=1e-5)
    # n = 1 (one pixel of one image): TensorFlow's kernel keeps the variance (0) as is.
    single = BatchNorm(momentum=0.5)
    single(x[:1, :1, :1], training=True)
    np.testing.assert_allclose(np.asarray(single.moving_variance), 0.5)


# === ASPP / KSAC ===
@pytest.mark.parametrize(
    "channels_in, aspp_weights, ksac_weights",
    [(2048, 15_532_032, 6_094_848), (320, 2_703_360, 1_228_800)],
)
def test_kernel_sharing_parameter_counts(channels_in, aspp_weights, ksac_weights):
    aspp = ASPP(256, atrous_rates=(6, 12, 18), separable=False)
    aspp.build((1, 33, 33, channels_in))
    ksac = KSAC(256, atrous_rates=(6, 12, 18))
    ksac.build((1, 33, 33, channels_in))
    assert conv_weights(aspp) == aspp_weights
    assert conv_weights(ksac) == ksac_weights


def test_ksac_parameters_do_not_grow_with_rates_except_projection():
    three = KSAC(16, atrous_rates=(1, 2, 3), merge="sum")
    four = KSAC(16, atrous_rates=(1, 2, 3, 4), merge="sum")
    three.build((1, 9, 9, 8))
    four.build((1, 9, 9, 8))
    # Sum merge: the concat width is fixed; only one more BN (gamma, beta) per rate.
    assert conv_weights(three) == conv_weights(four)
    assert len(four.trainable_weights) - len(three.trainable_weights) == 2


def test_ksac_equals_aspp_with_tied_kernels():
    """KSAC (regular, BN per rate, concat) is ASPP with its three kernels set equal."""
    x = random_inputs((2, 13, 13, 8))
    ksac = KSAC(6, atrous_rates=(1, 2, 3))
    aspp = ASPP(6, atrous_rates=(1, 2, 3), separable=False)
    ksac(x)
    aspp(x)
    shared = np.asarray(ksac.kernel)
    for branch in aspp.rate_branches:
        branch.conv.kernel.assign(shared)
    for name in ("pooling_branch", "aspp0", "projection"):
        getattr(aspp, name).set_weights(getattr(ksac, name).get_weights())
    np.testing.assert_allclose(np.asarray(ksac(x)), np.asarray(aspp(x)), atol=1e-4)
    kernels = [w for w in ksac.trainable_weights if len(w.shape) == 4 and w.shape[0] == 3]
    assert len(kernels) == 1


def test_ksac_needs_rates():
    with pytest.raises(ValueError, match="at least one rate"):
        KSAC(256, atrous_rates=())
    with pytest.raises(ValueError, match="merge"):
        KSAC(256, atrous_rates=(6,), merge="max")


def test_aspp_pooled_branch_equals_global_mean_when_kernel_covers_map():
    x = random_inputs((1, 9, 9, 4))
    global_mean = ASPP(5, pooling_size=None)
    pooled = ASPP(5, pooling_size=(9, 9))
    global_mean(x)
    pooled(x)
    pooled.set_weights(global_mean.get_weights())
    np.testing.assert_allclose(np.asarray(pooled(x)), np.asarray(global_mean(x)), atol=1e-5)
    with pytest.raises(ValueError, match="larger than the feature map"):
        ASPP(5, pooling_size=(17, 17))(x)


def _aspp_by_concat(aspp, x, training):
    """The original's ASPP: resize the pooled branch, concat everything, project."""
    pooled = aspp.pooling_branch(tf.reduce_mean(x, axis=[1, 2], keepdims=True), training=training)
    branches = [resize_bilinear(pooled, tf.shape(x)[1:3]), aspp.aspp0(x, training=training)]
    branches += [b(x, training=training) for b in aspp.rate_branches]
    return aspp.projection(tf.concat(branches, axis=-1), training=training)


@pytest.mark.parametrize("training", [False, True])
def test_aspp_image_bias_projection_equals_resize_and_concat(training):
    x = random_inputs((2, 11, 11, 6))
    # momentum 0.5: one training call moves the statistics visibly.
    options = dict(atrous_rates=(2,), separable=False, dropout=0.0,
                   norm=NormOptions(momentum=0.5))
    aspp, twin = ASPP(5, **options), ASPP(5, **options)
    aspp(x)
    twin(x)
    rng = np.random.default_rng(3)
    # Non-trivial BN statistics, so that the inference form's folded scale matters.
    aspp.set_weights([rng.uniform(0.5, 1.5, w.shape) for w in aspp.get_weights()])
    twin.set_weights(aspp.get_weights())
    expected = _aspp_by_concat(twin, x, training)
    np.testing.assert_allclose(np.asarray(aspp(x, training=training)), np.asarray(expected),
                               rtol=1e-5, atol=1e-5)
    # Training mode updates the projection's moving statistics with the concat's batch stats.
    for ours, theirs in zip(aspp.projection.bn.weights, twin.projection.bn.weights):
        np.testing.assert_allclose(np.asarray(ours), np.asarray(theirs), rtol=1e-5)


def test_aspp_image_bias_saves_the_pooled_share_of_the_projection():
    inputs = keras.Input((33, 33, 16))
    model = keras.Model(inputs, ASPP(8, atrous_rates=(3,), separable=False)(inputs))
    total = count_madds(model, (1, 33, 33, 16))
    # image pooling 16->8 at 1x1, aspp0 16->8, aspp1 3x3 16->8, projection: 16->8 at 33x33
    # for [aspp0; aspp1] plus 8->8 at 1x1 for the pooled bias (not 24->8 at 33x33).
    expected = 16 * 8 + 33 * 33 * 16 * 8 + 33 * 33 * 9 * 16 * 8 + 33 * 33 * 16 * 8 + 8 * 8
    assert total == expected


def test_aspp_without_rates_is_the_mobilenet_head():
    aspp = ASPP(256, atrous_rates=())
    aspp.build((1, 33, 33, 320))
    # image_pooling + aspp0 + concat_projection, each conv + BN gamma/beta.
    expected = 320 * 256 + 512 + 320 * 256 + 512 + 512 * 256 + 512
    assert sum(int(np.prod(w.shape)) for w in aspp.trainable_weights) == expected


# === DUC ===
def test_duc_depth_to_space_channel_order():
    d, classes = 2, 3
    duc = DUC(classes, upsample_factor=d, kernel_size=1)
    x = random_inputs((1, 2, 2, 4))
    out = np.asarray(duc(x))
    assert out.shape == (1, 4, 4, 3)
    kernel, bias = [np.asarray(w) for w in duc.get_weights()]
    dense = np.einsum("nhwc,co->nhwo", x, kernel[0, 0]) + bias
    for i in range(d):
        for j in range(d):
            for label in range(classes):
                np.testing.assert_allclose(
                    out[0, i::d, j::d, label], dense[0, :, :, (i * d + j) * classes + label],
                    atol=1e-5,
                )


def test_duc_aspp_variant_sums_four_rates():
    duc = DUC(2, upsample_factor=4, variant="aspp")
    duc.build((1, 8, 8, 5))
    assert [c.dilation_rate for c in duc.convs] == [(6, 6), (12, 12), (18, 18), (24, 24)]
    assert all(c.filters == 32 for c in duc.convs)


# === Every layer: config, saving, mixed precision ===
LAYER_CASES = [
    (AtrousConv2D, dict(filters=4, kernel_size=3, dilation_rate=2), (2, 9, 9, 3), (2, 9, 9, 4)),
    (AtrousConv2D, dict(filters=4, kernel_size=3, strides=2, explicit_padding=True),
     (2, 9, 9, 3), (2, 5, 5, 4)),
    (AtrousDepthwiseConv2D, dict(kernel_size=3, dilation_rate=3), (2, 9, 9, 3), (2, 9, 9, 3)),
    (BatchNorm, dict(update_statistics=False), (2, 5, 5, 3), (2, 5, 5, 3)),
    (ConvBNAct, dict(filters=4, kernel_size=3, activation="relu6"), (2, 9, 9, 3), (2, 9, 9, 4)),
    (AtrousSeparableConv, dict(filters=8, dilation_rate=2), (2, 9, 9, 4), (2, 9, 9, 8)),
    (ASPP, dict(filters=8, atrous_rates=(1, 2)), (2, 9, 9, 4), (2, 9, 9, 8)),
    (ASPP, dict(filters=8, atrous_rates=(2,), separable=False, pooling_size=(5, 5),
                pooling_stride=(2, 2)), (2, 9, 9, 4), (2, 9, 9, 8)),
    (KSAC, dict(filters=8, atrous_rates=(1, 2)), (2, 9, 9, 4), (2, 9, 9, 8)),
    (KSAC, dict(filters=8, atrous_rates=(1, 2, 3), separable=True, shared_batch_norm=True,
                merge="sum"), (2, 9, 9, 4), (2, 9, 9, 8)),
    (Decoder, dict(num_levels=1, filters=8, projection_filters=4), [(2, 5, 5, 6), (2, 9, 9, 3)],
     (2, 9, 9, 8)),
    (Decoder, dict(num_levels=2, filters=8, separable=False),
     [(2, 3, 3, 6), (2, 5, 5, 3), (2, 9, 9, 2)], (2, 9, 9, 8)),
    (DUC, dict(num_classes=3, upsample_factor=4), (2, 3, 3, 8), (2, 12, 12, 3)),
    (Preprocess, dict(mode="imagenet_mean"), (2, 4, 4, 3), (2, 4, 4, 3)),
    (ResizeLike, dict(method="bilinear"), [(2, 3, 3, 2), (2, 9, 9, 1)], (2, 9, 9, 2)),
]


@pytest.mark.parametrize(
    "layer_cls, kwargs, input_shape, output_shape",
    LAYER_CASES,
    ids=[f"{c[0].__name__}-{i}" for i, c in enumerate(LAYER_CASES)],
)
def test_layer_contract(layer_cls, kwargs, input_shape, output_shape, tmp_path):
    run_layer_test(layer_cls, kwargs, input_shape, output_shape, tmp_path)


def test_preprocess_values():
    x = np.array([[[[0, 127.5, 255]]]], "float32")
    np.testing.assert_allclose(np.asarray(Preprocess("unit_range")(x)), [[[[-1, 0, 1]]]])
    np.testing.assert_allclose(
        np.asarray(Preprocess("imagenet_mean")(x)), [[[[-123.15, 11.6, 151.94]]]], atol=1e-4
    )
    u8 = np.full((1, 1, 1, 3), 255, "uint8")
    np.testing.assert_allclose(np.asarray(Preprocess()(u8)), [[[[1, 1, 1]]]])
