"""ERF: exact gradients of small linear models, the ASPP satellite pattern, radii, image sources."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from deeplab.analysis.erf import (
    compute_erf,
    erf_center,
    expected_satellites,
    find_satellites,
    localize_backbone,
    mass_radii,
)
from deeplab.analysis.images import fit_image, load_images, random_images
from deeplab.layers.atrous_conv2d import AtrousConv2D
from deeplab.layers.atrous_depthwise_conv2d import AtrousDepthwiseConv2D
from deeplab.model import build_deeplab


def _linear_model(layer, size=9):
    images = keras.Input((size, size, 3))
    return keras.Model(images, layer(images))


def test_erf_of_a_dilated_conv_is_its_kernel_at_the_taps():
    """A linear model's gradient is its kernel: mean over RGB, positive part, sum 1."""
    kernel = np.arange(-27, 27, dtype=np.float32).reshape(3, 3, 3, 2)
    conv = AtrousConv2D(2, 3, dilation_rate=2, use_bias=False)
    model = _linear_model(conv)
    conv.set_weights([kernel])
    erf = compute_erf(model, random_images(2, (9, 9)))
    mean = kernel.mean(axis=2).mean(axis=-1)  # classes averaged, then RGB averaged
    expected = np.zeros((9, 9))
    expected[2:7:2, 2:7:2] = np.maximum(mean, 0)
    np.testing.assert_allclose(erf, expected / expected.sum(), atol=1e-7)

    one_class = compute_erf(model, random_images(1, (9, 9)), class_index=0, mode="abs")
    expected[2:7:2, 2:7:2] = np.abs(kernel[..., 0].mean(axis=2))
    np.testing.assert_allclose(one_class, expected / expected.sum(), atol=1e-7)
    with pytest.raises(ValueError, match="class_index 2"):
        compute_erf(model, random_images(1, (9, 9)), class_index=2)


@pytest.mark.parametrize("jit_compile", [False, True])
def test_dilated_depthwise_erf_lands_on_the_rate_3_taps(jit_compile):
    """The input gradient reaches the rate-3 taps, with and without XLA."""
    model = _linear_model(AtrousDepthwiseConv2D(3, dilation_rate=3, use_bias=False))
    model.layers[-1].set_weights([np.ones((3, 3, 3, 1), np.float32)])
    erf = compute_erf(model, random_images(1, (9, 9)), jit_compile=jit_compile)
    expected = np.zeros((9, 9))
    expected[1:8:3, 1:8:3] = 1 / 9
    np.testing.assert_allclose(erf, expected, atol=1e-7)


@pytest.fixture(scope="module")
def aspp_model():
    """MobileNetV2 (narrow) + ASPP (6, 12, 18) at OS 16, backbone reduced to its stem's reach.

    Image pooling is off: its gradient reaches every feature pixel (a faint dot per 16 px
    cell) and the test is about the rate branches.
    """
    keras.utils.set_random_seed(1)
    model = build_deeplab(model_variant="mobilenet_v2", depth_multiplier=0.25, num_classes=3,
                          output_stride=16, atrous_rates=(6, 12, 18),
                          add_image_level_feature=False)
    assert localize_backbone(model) == 17  # the 3x3 depthwise convs; the stem keeps its 3x3
    return model


@pytest.mark.parametrize("size, offsets", [(513, [96, 192]), (641, [96, 192, 288])])
def test_aspp_satellites_at_rate_times_output_stride(aspp_model, size, offsets):
    """Satellites on all 8 rays at r·OS px; at 513 rate 18 (r_max 16) shows none."""
    erf = compute_erf(aspp_model, random_images(2, (size, size), seed=size))
    found = find_satellites(erf)
    assert len(found) == 8
    for ray in found:
        assert len(ray) == len(offsets), found
        for got, want in zip(ray, offsets):
            assert abs(got - want) <= 16, found
    inside = [s.inside for s in expected_satellites((6, 12, 18), 16, (size, size))]
    assert inside == [True, True, size > 513]


def test_mass_radii_hand_computed():
    erf = np.zeros((21, 21))
    cy, cx = erf_center(erf.shape)
    erf[cy, cx] = 0.5
    erf[cy, cx + 6] = 0.3
    erf[cy + 8, cx] = 0.2
    assert mass_radii(erf) == {0.5: 0.0, 0.9: 8.0, 0.99: 8.0}
    assert mass_radii(erf, (0.8,)) == {0.8: 6.0}


def test_find_satellites_ignores_the_central_blob():
    yy, xx = np.indices((161, 161)) - 80
    erf = np.exp(-(yy**2 + xx**2) / 200.0)
    assert find_satellites(erf) == [[]] * 8
    erf[80, 140] += 1.0  # one satellite on the → ray, 60 px out
    erf[79:82, 19:22] += 0.1  # a 3x3 blob on the ← ray, 60 px out
    assert find_satellites(erf) == [[60], [60]] + [[]] * 6


def test_fit_image_covers_then_centre_crops():
    image = np.tile(np.arange(8, dtype=np.float32), (4, 1))[..., None].repeat(3, -1)
    np.testing.assert_array_equal(fit_image(image, (4, 4))[0, :, 0], [2, 3, 4, 5])
    assert fit_image(image, (8, 8)).shape == (8, 8, 3)  # upscaled ×2, then cropped


def test_load_images_from_folder_and_npz(tmp_path):
    import cv2

    cv2.imwrite(str(tmp_path / "b.png"), np.full((10, 20, 3), 7, np.uint8))
    cv2.imwrite(str(tmp_path / "a.png"), np.full((30, 30, 3), 9, np.uint8))
    (tmp_path / "notes.txt").write_text("not an image")
    images = list(load_images(str(tmp_path), (8, 8)))
    assert [i.shape for i in images] == [(8, 8, 3), (8, 8, 3)]
    assert [float(i.mean()) for i in images] == [9.0, 7.0]  # sorted by name
    np.savez(tmp_path / "set.npz", stack=np.zeros((3, 16, 16, 3)), single=np.ones((16, 16, 3)))
    assert len(list(load_images(str(tmp_path / "set.npz"), (8, 8)))) == 4
    assert len(list(load_images(str(tmp_path / "set.npz"), (8, 8), limit=2))) == 2
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no images"):
        list(load_images(str(tmp_path / "empty"), (8, 8)))
    with pytest.raises(ValueError, match="not a directory"):
        list(load_images(str(tmp_path / "missing"), (8, 8)))


def test_erf_script_writes_heatmap_array_and_report(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parent.parent / "scripts" / "erf.py"
    prefix = tmp_path / "out" / "erf"
    common = [sys.executable, str(script), "--depth_multiplier=0.25", "--num_images=1"]
    result = subprocess.run(common + ["--input_size=65", "--atrous_rates=1,2,3", "--log_scale",
                                      f"--output={prefix}"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    erf = np.load(f"{prefix}.npy")
    assert erf.shape == (65, 65) and abs(erf.sum() - 1) < 1e-9
    assert (tmp_path / "out" / "erf.png").read_bytes()[:4] == b"\x89PNG"
    assert "rate 2: taps at ±32 px, inside" in result.stdout  # 5x5 map at OS 16: r_max 2
    assert "rate 3: taps at ±48 px, off the feature map" in result.stdout
    assert "50% within" in result.stdout
