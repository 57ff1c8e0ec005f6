"""Bad inputs give a clear error naming the file (or are converted with a warning)."""

from __future__ import annotations

import io
import os

import cv2
import numpy as np
import pytest
from data_test_utils import blocks_label, read_records, rgb, save
from PIL import Image

from deeplab.data.converters.image_folder import convert_image_folder
from deeplab.data.errors import DataError


def convert(tmp_path, **kwargs):
    kwargs.setdefault("num_classes", 3)
    return convert_image_folder(str(tmp_path / "images"), str(tmp_path / "masks"),
                                str(tmp_path / "rec"), val_fraction=0, **kwargs)


def test_size_mismatch_names_both_files(tmp_path):
    save(rgb(8, 10), tmp_path / "images" / "a.png")
    save(blocks_label(8, 9), tmp_path / "masks" / "a.png")
    with pytest.raises(DataError, match=r"size mismatch: image '.*images/a\.png' is 10x8 "
                                        r"\(WxH\) as viewers show it \(EXIF orientation applied\) "
                                        r"but label '.*masks/a\.png' is 9x8"):
        convert(tmp_path)
    assert not any(f.endswith(".tfrecord") for f in os.listdir(tmp_path / "rec"))


def test_label_values_out_of_range(tmp_path):
    save(rgb(8, 10), tmp_path / "images" / "a.png")
    save(blocks_label(8, 10, ids=(0, 3, 7)), tmp_path / "masks" / "a.png")
    with pytest.raises(DataError, match=r"label '.*masks/a\.png' holds values \[3, 7\] outside "
                                        r"0\.\.2 that are not the ignore label 255"):
        convert(tmp_path)


def test_rgb_mask_where_indices_are_expected(tmp_path):
    save(rgb(8, 10), tmp_path / "images" / "a.png")
    save(rgb(8, 10, seed=3), tmp_path / "masks" / "a.png")
    with pytest.raises(DataError, match=r"'.*masks/a\.png' is an RGB colour mask .*"
                                        r"--color_table"):
        convert(tmp_path)


def test_palette_mask_is_read_as_indices_not_colours(tmp_path):
    save(rgb(8, 10), tmp_path / "images" / "a.png")
    label = blocks_label(8, 10, ids=(0, 1, 2))
    save(label, tmp_path / "masks" / "a.png", palette=True)
    assert Image.open(tmp_path / "masks" / "a.png").mode == "P"
    convert(tmp_path)
    np.testing.assert_array_equal(read_records(tmp_path / "rec", "train")[0]["label"], label)


def _cmyk_jpeg(path, array):
    Image.fromarray(array).convert("CMYK").save(path, format="JPEG", quality=100)


@pytest.mark.parametrize("kind", ["grayscale", "rgba", "16bit_gray", "16bit_rgb", "cmyk"])
def test_unusual_images_are_converted_with_a_warning(tmp_path, caplog, kind):
    array = rgb(8, 10)
    gray = array[..., 0]
    path = tmp_path / "images" / ("a.jpg" if kind == "cmyk" else "a.png")
    path.parent.mkdir(parents=True)
    if kind == "grayscale":
        save(gray, path)
        expected, message = np.stack([gray] * 3, -1), "grayscale image converted to RGB"
    elif kind == "rgba":
        save(np.dstack([array, np.full((8, 10), 7, np.uint8)]), path)
        expected, message = array, "RGBA image converted to RGB"
    elif kind == "16bit_gray":
        Image.fromarray(gray.astype(np.uint16) * 257).save(path)
        expected, message = np.stack([gray] * 3, -1), "16-bit grayscale image converted to 8-bit"
    elif kind == "16bit_rgb":
        cv2.imwrite(str(path), cv2.cvtColor(array.astype(np.uint16) * 257, cv2.COLOR_RGB2BGR))
        expected, message = array, "16-bit image reduced to 8 bits per channel"
    else:
        _cmyk_jpeg(path, array)
        expected, message = None, "CMYK image converted to RGB"
    save(blocks_label(8, 10), tmp_path / "masks" / "a.png")
    with caplog.at_level("WARNING", logger="deeplab.data"):
        convert(tmp_path)
    assert message in caplog.text and "a." in caplog.text
    (rec,) = read_records(tmp_path / "rec", "train")
    assert rec["format"] == "png" and rec["image"].shape == (8, 10, 3)
    if expected is not None:
        np.testing.assert_array_equal(rec["image"], expected)
    else:  # CMYK JPEG round trip: close to the original colours.
        assert np.abs(rec["image"].astype(int) - array.astype(int)).mean() < 8


@pytest.mark.parametrize("content", ["truncated_jpeg", "not_an_image", "broken_link"])
def test_corrupt_or_unreadable_images(tmp_path, content):
    path = tmp_path / "images" / "a.jpg"
    path.parent.mkdir(parents=True)
    if content == "truncated_jpeg":
        buf = io.BytesIO()
        Image.fromarray(rgb(64, 64)).save(buf, format="JPEG")
        path.write_bytes(buf.getvalue()[:400])
        expected = r"'.*images/a\.jpg' is corrupt or not an image"
    elif content == "not_an_image":
        path.write_bytes(b"hello, I am text")
        expected = r"'.*images/a\.jpg' is corrupt or not an image"
    else:
        path.symlink_to(tmp_path / "nowhere.jpg")
        expected = r"cannot read '.*images/a\.jpg'"
    save(blocks_label(64, 64), tmp_path / "masks" / "a.png")
    with pytest.raises(DataError, match=expected):
        convert(tmp_path)


def test_corrupt_mask(tmp_path):
    save(rgb(8, 10), tmp_path / "images" / "a.png")
    (tmp_path / "masks").mkdir()
    (tmp_path / "masks" / "a.png").write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    with pytest.raises(DataError, match=r"'.*masks/a\.png' is corrupt or not an image"):
        convert(tmp_path)


def test_16bit_mask_values_and_grey_rgb_mask(tmp_path):
    save(rgb(8, 10), tmp_path / "images" / "a.png")
    label = blocks_label(8, 10)
    (tmp_path / "masks").mkdir()
    Image.fromarray(label.astype(np.uint16)).save(tmp_path / "masks" / "a.png")
    save(rgb(8, 10), tmp_path / "images" / "b.png")
    save(np.stack([label] * 3, -1), tmp_path / "masks" / "b.png")  # Grey saved as RGB.
    convert(tmp_path)
    for rec in read_records(tmp_path / "rec", "train"):
        np.testing.assert_array_equal(rec["label"], label)
