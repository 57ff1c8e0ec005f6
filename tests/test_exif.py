"""EXIF orientation: applied as viewers apply it, in the converters, TF graphs and predict."""

from __future__ import annotations

import io
import logging

import numpy as np
import pytest
import tensorflow as tf
from data_test_utils import read_records
from PIL import Image, ImageOps

from deeplab.data.converters.image_folder import convert_image_folder
from deeplab.data.exif import apply_orientation, decode_oriented, exif_orientation
from deeplab.data.image_io import orient

# Per class: a colour far from the others, so JPEG noise cannot confuse them.
COLORS = np.array([[20, 20, 20], [230, 30, 30], [30, 220, 40]], np.uint8)


def encoded(pixels: np.ndarray, orientation: int, fmt: str = "JPEG") -> bytes:
    """``pixels`` as stored by a camera, tagged with an EXIF orientation."""
    exif = Image.Exif()
    if orientation != 1:
        exif[0x0112] = orientation
    buffer = io.BytesIO()
    options = {"quality": 100, "subsampling": 0} if fmt == "JPEG" else {}
    Image.fromarray(pixels).save(buffer, format=fmt, exif=exif, **options)
    return buffer.getvalue()


def as_viewers_show(data: bytes) -> np.ndarray:
    return np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB"))


def stored_pixels(height=12, width=20, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_graph_and_numpy_turns_equal_pils_exif_transpose(orientation):
    pixels = stored_pixels()
    png = encoded(pixels, orientation, "PNG")  # lossless: exact comparison
    want = as_viewers_show(png)
    assert int(exif_orientation(tf.constant(png))) == orientation
    np.testing.assert_array_equal(decode_oriented(tf.constant(png)).numpy(), want)
    np.testing.assert_array_equal(orient(pixels, orientation), want)
    jpeg = encoded(pixels, orientation)
    assert int(exif_orientation(tf.constant(jpeg))) == orientation
    decoded = tf.io.decode_jpeg(jpeg)
    np.testing.assert_array_equal(apply_orientation(decoded, orientation).numpy(),
                                  orient(decoded.numpy(), orientation))


@pytest.mark.parametrize("data", [b"", b"\xff\xd8\xff\xe1\x00\x10Exif\x00\x00II*\x00",
                                  b"not an image at all", b"Exif\x00\x00MM\x00*\x00\x00\x00\x08"])
def test_missing_or_broken_exif_reads_as_upright(data):
    assert int(exif_orientation(tf.constant(data))) == 1


def test_big_endian_exif():
    # A hand-made big-endian TIFF block: 1 entry, Orientation (SHORT) = 8.
    tiff = b"MM\x00*\x00\x00\x00\x08" + b"\x00\x01" + b"\x01\x12\x00\x03\x00\x00\x00\x01" + \
        b"\x00\x08\x00\x00" + b"\x00\x00\x00\x00"
    data = b"\xff\xd8\xff\xe1" + (len(tiff) + 8).to_bytes(2, "big") + b"Exif\x00\x00" + tiff
    assert int(exif_orientation(tf.constant(data))) == 8


def phone_pair(tmp_path, name, height, width, orientation=6):
    """A JPEG stored sideways with EXIF orientation 6, and a mask drawn on the upright view.

    Returns the displayed (upright) picture and the mask.
    """
    rng = np.random.default_rng(height * width)
    label = np.zeros((height, width), np.uint8)
    label[: height // 2, : width // 3] = 1
    label[height // 3:, width // 2:] = 2
    label[rng.random((height, width)) < 0.02] = 1
    displayed = COLORS[label]
    # Stored so that turning it 90° clockwise (orientation 6) shows `displayed`.
    stored = np.ascontiguousarray(np.rot90(displayed, 1))
    (tmp_path / "images").mkdir(exist_ok=True)
    (tmp_path / "masks").mkdir(exist_ok=True)
    (tmp_path / "images" / f"{name}.jpg").write_bytes(encoded(stored, orientation))
    Image.fromarray(label).save(tmp_path / "masks" / f"{name}.png")
    return displayed, label


def classify(image):
    distances = np.abs(image[..., None, :].astype(int) - COLORS.astype(int)).sum(-1)
    return distances.argmin(-1)


@pytest.mark.parametrize("height, width", [(24, 40), (32, 32)])
def test_converter_turns_phone_photos_to_match_their_masks(tmp_path, caplog, height, width):
    """Non-square: was a bare size mismatch. Square: was converted with 50 % agreement."""
    displayed, label = phone_pair(tmp_path, "phone", height, width)
    with caplog.at_level(logging.WARNING, logger="deeplab.data"):
        convert_image_folder(str(tmp_path / "images"), str(tmp_path / "masks"),
                             str(tmp_path / "rec"), num_classes=3, val_fraction=0)
    (record,) = read_records(tmp_path / "rec", "train")
    assert (record["height"], record["width"]) == (height, width)
    assert record["image"].shape == displayed.shape
    assert np.mean(classify(record["image"]) == record["label"]) >= 0.99
    assert "EXIF orientation 6 applied (rotated 90° clockwise" in caplog.text


def test_mask_matching_the_stored_pixels_gets_a_hint(tmp_path):
    from deeplab.data.errors import DataError

    phone_pair(tmp_path, "phone", 24, 40)
    sideways = np.zeros((40, 24), np.uint8)  # drawn on the stored, unturned pixels
    Image.fromarray(sideways).save(tmp_path / "masks" / "phone.png")
    with pytest.raises(DataError, match="the label is the image turned by 90°"):
        convert_image_folder(str(tmp_path / "images"), str(tmp_path / "masks"),
                             str(tmp_path / "rec"), num_classes=3, val_fraction=0)


def test_tfds_adapter_turns_phone_photos(tmp_path):
    tfds = pytest.importorskip("tensorflow_datasets")
    from deeplab.data.pipeline import PreprocessConfig
    from deeplab.data.tfds_adapter import tfds_dataset

    displayed, label = phone_pair(tmp_path, "phone", 24, 40)
    photo = tmp_path / "images" / "phone.jpg"

    class Phones(tfds.core.GeneratorBasedBuilder):
        VERSION = tfds.core.Version("1.0.0")

        def _info(self):
            return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict({
                "image": tfds.features.Image(shape=(None, None, 3)),
                "segmentation_mask": tfds.features.Image(shape=(None, None, 1)),
            }))

        def _split_generators(self, dl_manager):
            return {"train": self._generate_examples()}

        def _generate_examples(self):
            # The photo's own bytes (EXIF kept), as a TFDS builder reading files stores them.
            yield 0, {"image": str(photo), "segmentation_mask": label[..., None]}

    builder = Phones(data_dir=str(tmp_path / "tfds"))
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(try_download_gcs=False))
    (batch,) = tfds_dataset(builder, "train", 1, False, PreprocessConfig(crop_size=None))
    image = batch["image"].numpy()[0].round().astype(np.uint8)
    assert image.shape == displayed.shape
    assert np.mean(classify(image) == batch["label"].numpy()[0, ..., 0]) >= 0.99
