"""The real PASCAL VOC pair 2007_000063 through the VOC converter and back, bit-exact."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from data_test_utils import read_records
from PIL import Image

from deeplab.data.converters.voc import convert_voc2012
from deeplab.data.pipeline import PreprocessConfig, make_dataset


def _reference(reference_dir, name):
    path = reference_dir / "voc" / "icevision" / name
    if not path.is_file():
        pytest.fail(f"reference file missing: {path} (see ../shared/artifacts/SOURCES.md)")
    return path


def test_real_voc_pair_round_trip(reference_dir, tmp_path):
    image = _reference(reference_dir, "2007_000063.jpg")
    label = _reference(reference_dir, "2007_000063_SegmentationClass.png")
    voc = tmp_path / "VOCdevkit" / "VOC2012"
    for folder in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
        (voc / folder).mkdir(parents=True)
    shutil.copy(image, voc / "JPEGImages" / "2007_000063.jpg")
    shutil.copy(label, voc / "SegmentationClass" / "2007_000063.png")
    (voc / "ImageSets" / "Segmentation" / "val.txt").write_text("2007_000063\n")
    assert Image.open(label).mode == "P"  # The official palette PNG, read as indices.

    convert_voc2012(str(voc / "JPEGImages"), str(voc / "SegmentationClass"),
                    str(voc / "ImageSets" / "Segmentation"), str(tmp_path / "rec"))

    (rec,) = read_records(tmp_path / "rec", "val")
    assert (rec["filename"], rec["format"], rec["height"], rec["width"]) == (
        "2007_000063", "jpeg", 375, 500)
    assert rec["encoded"] == image.read_bytes()
    values, counts = np.unique(rec["label"], return_counts=True)
    assert rec["label"].shape == (375, 500)
    assert dict(zip(values.tolist(), counts.tolist(), strict=True)) == {
        0: 72224, 9: 78930, 12: 27632, 255: 8714}
    np.testing.assert_array_equal(rec["label"], np.asarray(Image.open(label)))

    # And through the eval pipeline: whole image, label unchanged.
    batch = next(iter(make_dataset(str(tmp_path / "rec"), "val", 1, False,
                                   PreprocessConfig(crop_size=None))))
    assert batch["image"].shape == (1, 375, 500, 3)
    np.testing.assert_array_equal(batch["label"][0, ..., 0], rec["label"])
