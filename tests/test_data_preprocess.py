"""The original's preprocessing, checked with the values its own tests pin (§9)."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from deeplab.data import input_preprocess as pp


@pytest.mark.parametrize(
    "min_size, max_size, factor, shape, expected",
    [
        (50, 100, None, (60, 40), (75, 50)),
        (50, 100, None, (15, 30), (50, 100)),
        (50, 100, None, (15, 50), (30, 100)),
        (50, 98, 8, (60, 40), (81, 57)),
        (50, 98, 8, (15, 30), (49, 97)),
        (50, 98, 8, (15, 50), (33, 97)),
        (96, 98, 8, (60, 40), (97, 65)),
        (97, 97, 8, (97, 38), (97, 41)),
        (97, 97, 8, (96, 97), (97, 97)),
        (1441, 1441, 16, (3936, 5248), (1089, 1441)),
    ])
def test_resize_to_range_shapes(min_size, max_size, factor, shape, expected):
    image = tf.zeros(shape + (3,), tf.float32)
    label = tf.zeros(shape + (1,), tf.int32)
    new_image, new_label = pp.resize_to_range(image, label, min_size, max_size, factor)
    assert tuple(new_image.shape) == expected + (3,)
    assert tuple(new_label.shape) == expected + (1,)
    assert new_label.dtype == tf.int32


def test_resize_to_range_chw_label_and_no_aspect_ratio():
    image = tf.zeros((60, 40, 3))
    _, label = pp.resize_to_range(image, tf.zeros((5, 60, 40), tf.int32), 50, 98, 8,
                                  label_layout_is_chw=True)
    assert tuple(label.shape) == (5, 81, 57)
    resized, _ = pp.resize_to_range(tf.zeros((97, 38, 3)), None, 97, 97, 8,
                                    keep_aspect_ratio=False)
    assert tuple(resized.shape) == (97, 97, 3)


def test_resizes_use_align_corners():
    image = tf.constant([[0.0, 1.0], [2.0, 3.0]])[..., None]
    resized, label = pp.resize_to_range(image, tf.constant([[0, 1], [2, 3]])[..., None], 3, 3)
    np.testing.assert_allclose(resized[..., 0], [[0, .5, 1], [1, 1.5, 2], [2, 2.5, 3]])
    np.testing.assert_array_equal(label[..., 0], [[0, 1, 1], [2, 3, 3], [2, 3, 3]])


PAD_IMAGE = np.dstack([[[5, 6], [9, 0]], [[4, 3], [3, 5]]])
PAD_EXPECTED = np.dstack([
    [[255, 255, 255, 255, 255], [255, 255, 255, 255, 255], [255, 5, 6, 255, 255],
     [255, 9, 0, 255, 255], [255, 255, 255, 255, 255]],
    [[255, 255, 255, 255, 255], [255, 255, 255, 255, 255], [255, 4, 3, 255, 255],
     [255, 3, 5, 255, 255], [255, 255, 255, 255, 255]]])


@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.float32, np.float64, np.uint8])
def test_pad_to_bounding_box_values(dtype):
    padded = pp.pad_to_bounding_box(PAD_IMAGE.astype(dtype), 2, 1, 5, 5, 255)
    assert padded.dtype == tf.as_dtype(dtype)
    np.testing.assert_array_equal(padded, PAD_EXPECTED)
    batched = pp.pad_to_bounding_box(np.stack([PAD_IMAGE] * 2).astype(dtype), 2, 1, 5, 5, 255)
    np.testing.assert_array_equal(batched, np.stack([PAD_EXPECTED] * 2))


def test_pad_to_bounding_box_identity_and_per_channel_value():
    np.testing.assert_array_equal(pp.pad_to_bounding_box(PAD_IMAGE, 0, 0, 2, 2, 255), PAD_IMAGE)
    padded = pp.pad_to_bounding_box(np.zeros((1, 1, 3), np.float32), 0, 0, 2, 1,
                                     tf.constant([[[1.0, 2.0, 3.0]]]))
    np.testing.assert_array_equal(padded, [[[0, 0, 0]], [[1, 2, 3]]])


@pytest.mark.parametrize("args, message", [
    ((0, 0, 5, 1), "target_width must be >= width"),
    ((0, 0, 1, 5), "target_height must be >= height"),
    ((4, 0, 5, 5), "target size not possible with the given target offsets"),
])
def test_pad_to_bounding_box_errors(args, message):
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        pp.pad_to_bounding_box(PAD_IMAGE, *args, 255)


def test_pad_to_bounding_box_rank_error():
    with pytest.raises(ValueError, match="Wrong image tensor rank"):
        pp.pad_to_bounding_box(np.zeros((2, 2)), 0, 0, 3, 3, 0)


def test_random_crop_consistent_and_inside_the_image():
    image = np.arange(10 * 12 * 2, dtype=np.int32).reshape(10, 12, 2)
    label = image[..., :1] * 10
    crops = set()
    for _ in range(20):
        cropped, cropped_label = pp.random_crop([image, label], 3, 4)
        cropped = cropped.numpy()
        y, x = np.argwhere(image[..., 0] == cropped[0, 0, 0])[0]
        np.testing.assert_array_equal(cropped, image[y:y + 3, x:x + 4])  # Keeps channels.
        np.testing.assert_array_equal(cropped_label, cropped[..., :1] * 10)
        crops.add((y, x))
    assert len(crops) > 1  # Two evaluations give different crops.
    seeded = [pp.random_crop([image], 3, 4, seed=tf.constant([1, 2]))[0].numpy()
              for _ in range(2)]
    np.testing.assert_array_equal(seeded[0], seeded[1])


def test_random_crop_errors():
    with pytest.raises(tf.errors.InvalidArgumentError, match="Wrong height for tensor"):
        pp.random_crop([np.zeros((5, 5, 1)), np.zeros((6, 5, 1))], 2, 2)
    with pytest.raises(tf.errors.InvalidArgumentError, match="Wrong width for tensor"):
        pp.random_crop([np.zeros((5, 5, 1)), np.zeros((5, 6, 1))], 2, 2)
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match="Crop size greater than the image size"):
        pp.random_crop([np.zeros((5, 5, 1))], 6, 2)


def test_flip_dim():
    image = np.arange(6).reshape(1, 2, 3)
    label = image * 2
    for dim in (0, 1, 2):
        unflipped = pp.flip_dim([image], prob=0.0, dim=dim)
        np.testing.assert_array_equal(unflipped[0], image)
        assert not unflipped[1]
        flipped = pp.flip_dim([image], prob=1.0, dim=dim)
        np.testing.assert_array_equal(flipped[0], np.flip(image, dim))
        assert flipped[1]
    outcomes = set()
    for _ in range(30):
        out_image, out_label, flipped = pp.flip_dim([image, label], prob=0.5, dim=1)
        np.testing.assert_array_equal(out_label, out_image.numpy() * 2)
        outcomes.add(bool(flipped))
    assert outcomes == {True, False}


def test_get_random_scale():
    assert float(pp.get_random_scale(1.5, 1.5, 0.25)) == 1.5
    values = {round(float(pp.get_random_scale(0.5, 2.0, 0.25)), 6) for _ in range(200)}
    assert values == {0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0}
    uniform = float(pp.get_random_scale(0.5, 2.0, 0.0)[0])
    assert 0.5 <= uniform < 2.0
    with pytest.raises(ValueError, match="Unexpected value of min_scale_factor"):
        pp.get_random_scale(2.0, 1.0, 0.25)


def test_randomly_scale_floors_dims_and_keeps_label_values():
    image = tf.zeros((10, 12, 3))
    label = tf.constant(np.arange(120, dtype=np.int32).reshape(10, 12, 1))
    scaled_image, scaled_label = pp.randomly_scale_image_and_label(image, label, 0.75)
    assert tuple(scaled_image.shape) == (7, 9, 3)
    assert tuple(scaled_label.shape) == (7, 9, 1)
    assert set(np.unique(scaled_label)) <= set(range(120))  # Nearest neighbour: no new values.


def test_preprocess_training_pads_with_mean_and_ignore_then_crops():
    image = np.full((10, 12, 3), 7, np.uint8)
    label = np.ones((10, 12, 1), np.uint8)
    _, out, out_label = pp.preprocess_image_and_label(
        image, label, 16, 16, ignore_label=255, is_training=True, flip_probability=0.0)
    assert out.shape == (16, 16, 3) and out.dtype == tf.float32
    np.testing.assert_array_equal(out[:10, :12], 7.0)
    np.testing.assert_array_equal(out[10:], 127.5)
    np.testing.assert_array_equal(out[:, 12:], 127.5)
    np.testing.assert_array_equal(out_label[:10, :12], 1)
    np.testing.assert_array_equal(out_label[10:], 255)
    _, _, flipped = pp.preprocess_image_and_label(image, label, 16, 16, flip_probability=1.0)
    np.testing.assert_array_equal(flipped[:10, 4:], 1)
    np.testing.assert_array_equal(flipped[:10, :4], 255)


def test_preprocess_training_scale_crop_flip_keep_image_and_label_aligned():
    # The label is a function of the image colour, so any misalignment shows up.
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 4, size=(6, 8))
    image = np.repeat(np.repeat(ids * 60, 8, axis=0), 8, axis=1)[..., None].repeat(3, -1)
    label = np.repeat(np.repeat(ids, 8, axis=0), 8, axis=1)[..., None]
    for step in range(5):
        _, out, out_label = pp.preprocess_image_and_label(
            image.astype(np.uint8), label.astype(np.uint8), 40, 40, min_scale_factor=0.5,
            max_scale_factor=2.0, scale_factor_step_size=0.25, seed=tf.constant([3, step]))
        out, out_label = out.numpy()[..., 0], out_label.numpy()[..., 0]
        valid = (out_label != 255) & (np.abs(out - np.round(out / 60) * 60) < 1e-3)
        np.testing.assert_array_equal(out[valid], out_label[valid] * 60.0)


def test_preprocess_eval_has_no_crop_and_needs_no_label():
    image = np.zeros((30, 20, 3), np.uint8)
    original, out, label = pp.preprocess_image_and_label(image, None, None, None,
                                                         is_training=False)
    assert out.shape == (30, 20, 3) and label is None and original.shape == (30, 20, 3)
    _, out, _ = pp.preprocess_image_and_label(image, None, 25, 25, is_training=False)
    assert out.shape == (30, 25, 3)  # Padded up to the crop size, never cropped.
    _, out, _ = pp.preprocess_image_and_label(image, None, None, None, min_resize_value=50,
                                              max_resize_value=60, is_training=False)
    assert out.shape == (60, 40, 3)
    with pytest.raises(ValueError, match="During training, label must be provided"):
        pp.preprocess_image_and_label(image, None, 10, 10, is_training=True)
