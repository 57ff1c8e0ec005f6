"""Backbones: the original's end-point shapes, atrous equivalence, registry, saving."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from layer_test_utils import assert_outputs_close, random_inputs

from deeplab.backbones import BACKBONES, MobileNetV2, ResNetV1, Xception, checkpoint_scope
from deeplab.backbones.mobilenet_v2 import make_divisible


def endpoint_model(backbone, names):
    return keras.Model(backbone.input, [backbone.get_layer(n).output for n in names])


XCEPTION_ENDPOINTS = [
    "entry_flow.conv1_1",
    "entry_flow.block1.unit_1.xception_module",
    "entry_flow.block2.unit_1.xception_module",
    "entry_flow.block3.unit_1.xception_module",
    "middle_flow.block1.unit_16.xception_module",
    "exit_flow.block1.unit_1.xception_module",
    "exit_flow.block2.unit_1.xception_module.separable_conv3",
]


@pytest.fixture(scope="module")
def xception_65():
    """Xception-65 built once for the module (nominal stride)."""
    return Xception("xception_65", output_stride=None)


@pytest.mark.parametrize(
    "output_stride, sizes",
    [
        (None, [33, 17, 9, 5, 5, 3, 3]),  # the original's 65x65 fully convolutional case
        (16, [33, 17, 9, 5, 5, 5, 5]),
        (8, [33, 17, 9, 9, 9, 9, 9]),
    ],
)
def test_xception65_endpoint_shapes_at_65(xception_65, output_stride, sizes):
    net = xception_65 if output_stride is None else Xception("xception_65", output_stride)
    outputs = endpoint_model(net, XCEPTION_ENDPOINTS)(np.zeros((2, 65, 65, 3), "float32"))
    assert [tuple(o.shape[1:3]) for o in outputs] == [(s, s) for s in sizes]
    assert [o.shape[-1] for o in outputs] == [32, 128, 256, 728, 728, 1024, 2048]


def test_xception65_decoder_endpoints_and_scopes(xception_65):
    outputs = xception_65(np.zeros((1, 65, 65, 3), "float32"))
    assert {k: tuple(v.shape) for k, v in outputs.items()} == {
        "features": (1, 3, 3, 2048),
        "stride_4": (1, 17, 17, 256),
        "stride_8": (1, 9, 9, 728),
        "stride_16": (1, 5, 5, 1024),
    }
    layer = xception_65.get_layer("entry_flow.block2.unit_1.xception_module.separable_conv2")
    assert checkpoint_scope(layer.name) == (
        "entry_flow/block2/unit_1/xception_module/separable_conv2"
    )
    assert xception_65.checkpoint_prefix == "xception_65"
    # 2 root convs + 21 modules x 3 separable convs = 65 layers.
    separable = [layer for layer in xception_65.layers if ".separable_conv" in layer.name]
    assert len(separable) == 63


@pytest.mark.parametrize("output_stride", [8, 16])
def test_xception_atrous_equals_nominal_subsampled(xception_65, output_stride):
    """The original's check: atrous at OS s, subsampled, equals the nominal network."""
    atrous = Xception("xception_65", output_stride=output_stride)
    atrous.set_weights(xception_65.get_weights())
    x = random_inputs((1, 65, 65, 3))
    factor = 32 // output_stride
    nominal = np.asarray(xception_65(x)["features"])
    dense = np.asarray(atrous(x)["features"])
    np.testing.assert_allclose(dense[:, ::factor, ::factor], nominal, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize(
    "beta, output_stride, sizes",
    [
        (True, None, [161, 81, 41, 21, 11, 11]),
        (False, None, [161, 81, 41, 21, 11, 11]),
        (True, 8, [161, 81, 41, 41, 41, 41]),
    ],
)
def test_resnet50_endpoint_shapes_at_321(beta, output_stride, sizes):
    net = ResNetV1(50, beta=beta, output_stride=output_stride)
    names = ["conv1_3" if beta else "conv1", "pool1", "block1.unit_3.bottleneck_v1",
             "block2.unit_4.bottleneck_v1", "block3.unit_6.bottleneck_v1",
             "block4.unit_3.bottleneck_v1"]
    outputs = endpoint_model(net, names)(np.zeros((1, 321, 321, 3), "float32"))
    assert [o.shape[1] for o in outputs] == sizes


def test_resnet_atrous_equals_nominal_and_multi_grid_rates():
    x = random_inputs((1, 97, 97, 3))
    nominal = ResNetV1(50, beta=True, output_stride=None)
    atrous = ResNetV1(50, beta=True, output_stride=16, multi_grid=(1, 2, 4))
    rates = [atrous.get_layer(f"block4.unit_{i}.bottleneck_v1.conv2").conv.dilation_rate
             for i in (1, 2, 3)]
    assert rates == [(2, 2), (4, 4), (8, 8)]
    plain = ResNetV1(50, beta=True, output_stride=16)
    plain.set_weights(nominal.get_weights())
    # block4 only: nominal stride 32 and OS 16 differ by the stride of block3's last unit.
    got = np.asarray(plain(x)["stride_8"])
    want = np.asarray(nominal(x)["stride_8"])
    np.testing.assert_allclose(got, want, atol=1e-4)
    full = np.asarray(plain(x)["features"])[:, ::2, ::2]
    want = np.asarray(nominal(x)["features"])
    # Untrained (identity-BN) ResNets reach ~1e5 at block4: compare relative to that scale.
    np.testing.assert_allclose(full, want, atol=1e-5 * np.abs(want).max())


def test_resnet_hdc_unit_rates():
    net = ResNetV1(50, output_stride=8, unit_rates={"block3": (1, 2, 5, 9), "block4": (5, 9, 17)})
    rates3 = [net.get_layer(f"block3.unit_{i}.bottleneck_v1.conv2").conv.dilation_rate[0]
              for i in range(1, 7)]
    rates4 = [net.get_layer(f"block4.unit_{i}.bottleneck_v1.conv2").conv.dilation_rate[0]
              for i in range(1, 4)]
    assert rates3 == [1, 2, 5, 9, 1, 2] and rates4 == [5, 9, 17]
    with pytest.raises(ValueError, match="smaller output_stride"):
        ResNetV1(50, output_stride=32, unit_rates={"block3": (1, 2, 5)})
    with pytest.raises(ValueError, match="block3"):
        ResNetV1(50, output_stride=8, unit_rates={"block5": (1, 2)})


def test_mobilenet_v2_shapes_widths_and_params():
    net = MobileNetV2(output_stride=16)
    outputs = net(np.zeros((1, 65, 65, 3), "float32"))
    assert {k: tuple(v.shape) for k, v in outputs.items()} == {
        "features": (1, 5, 5, 320),
        "stride_4": (1, 17, 17, 144),
        "stride_8": (1, 9, 9, 192),
        "stride_16": (1, 5, 5, 576),
    }
    assert sum(int(np.prod(w.shape)) for w in net.trainable_weights) == 1_811_712
    # The unit that would reach stride 32 runs at stride 1; the ones after it atrous.
    assert net.get_layer("expanded_conv_13.depthwise").conv.strides == (1, 1)
    assert net.get_layer("expanded_conv_14.depthwise").conv.dilation_rate == (2, 2)
    half = MobileNetV2(output_stride=8, depth_multiplier=0.5)
    names = ("Conv", "expanded_conv.project", "expanded_conv_1.expand", "expanded_conv_16.project")
    widths = [half.get_layer(n).output.shape[-1] for n in names]
    assert widths == [16, 8, 48, 160]


def test_make_divisible_matches_slim():
    assert make_divisible(32 * 0.35, 8) == 16  # 8 would lose > 10 % of 11.2: round up
    assert make_divisible(24 * 0.5, 8) == 16
    assert make_divisible(96, 8) == 96
    assert make_divisible(12, 1, 1) == 12


@pytest.mark.parametrize("output_stride", [4, 12, 64])
def test_bad_output_stride_names_allowed_values(output_stride):
    with pytest.raises(ValueError, match=r"output_stride must be one of \(8, 16, 32, None\)"):
        MobileNetV2(output_stride=output_stride)


SMALL_INPUT = (1, 33, 33, 3)
# Auto-DeepLab's searched cells end at output stride 8 (16 needs its classification head).
OUTPUT_STRIDE = {"nas_hnasnet": 8}


# The quick tier builds one backbone of each class (the smallest); the deeper members of a
# family differ only in their block counts, and the full tier builds every one.
QUICK_TIER = {"mobilenet_v2", "mobilenet_v3_large_seg", "mobilenet_v3_small_seg",
              "mobilenet_edgetpu", "xception_41", "resnet_v1_50", "nas_pnasnet"}


@pytest.mark.parametrize("name", [
    name if name in QUICK_TIER else pytest.param(name, marks=pytest.mark.slow)
    for name in sorted(BACKBONES)])
def test_registered_backbone_contract(name, tmp_path):
    """Forward, a training step's gradients, config round-trip, .keras save/load and
    mixed_bfloat16 for each entry."""
    spec = BACKBONES[name]
    output_stride = OUTPUT_STRIDE.get(name, 16)
    net = spec.build(output_stride=output_stride)
    x = random_inputs(SMALL_INPUT, scale=0.5)
    out = {k: np.asarray(v) for k, v in net(x).items()}
    assert out["features"].shape[1:3] == ((32 // output_stride + 1),) * 2
    assert set(out) == {"features"} | {f"stride_{s}" for s in spec.decoder_strides}

    clone = type(net).from_config(net.get_config())
    assert clone.get_config() == net.get_config()
    clone.set_weights(net.get_weights())
    assert_outputs_close({k: np.asarray(v) for k, v in clone(x).items()}, out, atol=1e-4)

    path = tmp_path / f"{name}.keras"
    net.save(path)
    loaded = keras.saving.load_model(path)
    assert_outputs_close({k: np.asarray(v) for k, v in loaded(x).items()}, out, atol=1e-4)

    # A training step (it updates the BN statistics: after the comparisons above): its gradients
    # reach every trainable weight, finite.
    with tf.GradientTape() as tape:
        loss = sum(tf.reduce_mean(tf.square(v)) for v in net(x, training=True).values())
    gradients = tape.gradient(loss, net.trainable_variables)
    missing = [v.path for v, g in zip(net.trainable_variables, gradients) if g is None]
    assert not missing, missing[:5]
    assert all(np.isfinite(np.asarray(g)).all() for g in gradients)

    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    mixed = spec.build(output_stride=output_stride)
    features = mixed(x)["features"]
    assert "bfloat16" in str(features.dtype)
    assert np.all(np.isfinite(np.asarray(features, dtype="float32")))


def test_the_quick_tier_builds_registered_backbones():
    assert QUICK_TIER <= set(BACKBONES)
