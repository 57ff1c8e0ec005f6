"""The synthetic data set: deterministic, separable classes, occlusions, ignore band."""

from __future__ import annotations

import numpy as np
from data_test_utils import read_records

from deeplab.data.synthetic import (
    CLASS_COLORS,
    SyntheticConfig,
    build_synthetic,
    generate_example,
)


def test_generation_is_deterministic_and_varied():
    image, label = generate_example(0, "train", 7)
    again_image, again_label = generate_example(0, "train", 7)
    np.testing.assert_array_equal(image, again_image)
    np.testing.assert_array_equal(label, again_label)
    other, _ = generate_example(0, "train", 8)
    val, _ = generate_example(0, "val", 7)
    reseeded, _ = generate_example(1, "train", 7)
    assert not np.array_equal(image, other)
    assert not np.array_equal(image, val)
    assert not np.array_equal(image, reseeded)
    assert image.shape == (128, 128, 3) and image.dtype == np.uint8
    assert generate_example(0, "train", 0, height=64, width=96)[0].shape == (64, 96, 3)


def test_classes_are_separable_by_colour_and_bounded_by_ignore():
    counts = np.zeros(256, np.int64)
    for index in range(40):
        image, label = generate_example(0, "train", index)
        counts += np.bincount(label.ravel(), minlength=256)
        for cls, color in CLASS_COLORS.items():
            mask = label == cls
            if mask.sum() > 20:
                mean = image[mask].mean(axis=0)
                assert np.abs(mean - color).max() < 30, (index, cls, mean)
        background = image[label == 0].astype(np.int32)
        saturation = background.max(axis=1) - background.min(axis=1)
        assert np.percentile(saturation, 99) < 60  # Grey-ish, far from the object colours.
        # No two different classes touch: a 255 band always separates them.
        for a, b in ((label[:, 1:], label[:, :-1]), (label[1:, :], label[:-1, :])):
            touching = (a != b) & (a != 255) & (b != 255)
            assert not touching.any()
    present = set(np.nonzero(counts)[0].tolist())
    assert present == {0, 1, 2, 3, 4, 5, 255}
    assert counts[255] < 0.15 * counts.sum()


def test_occlusion_happens():
    # A later object drawn over an earlier one leaves a partial shape: some image has an object
    # class whose region is not convex-ish; simply check overlapping draws exist via counts.
    overlapping = 0
    for index in range(30):
        _, label = generate_example(0, "train", index)
        overlapping += int(len(set(np.unique(label).tolist()) - {0, 255}) >= 3)
    assert overlapping > 5


def test_build_synthetic_sizes_and_contents(tmp_path):
    desc = build_synthetic(str(tmp_path), SyntheticConfig({"train": 5, "val": 2}, 24, 32, seed=3),
                           num_shards=2)
    assert desc.splits_to_sizes == {"train": 5, "val": 2} and desc.num_classes == 6
    recs = read_records(tmp_path, "val")
    assert [r["filename"] for r in recs] == ["val_000000", "val_000001"]
    image, label = generate_example(3, "val", 1, 24, 32)
    np.testing.assert_array_equal(recs[1]["image"], image)
    np.testing.assert_array_equal(recs[1]["label"], label)
