"""A TFDS data set built locally (no download) feeds the same pipeline."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

tfds = pytest.importorskip("tensorflow_datasets")

from deeplab.data.errors import DataError  # noqa: E402
from deeplab.data.pipeline import PreprocessConfig  # noqa: E402
from deeplab.data.tfds_adapter import tfds_dataset  # noqa: E402


class TinyPets(tfds.core.GeneratorBasedBuilder):
    """Images with a 1..3 trimap mask, like oxford_iiit_pet."""

    VERSION = tfds.core.Version("1.0.0")

    def _info(self):
        return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict({
            "image": tfds.features.Image(shape=(None, None, 3)),
            "segmentation_mask": tfds.features.Image(shape=(None, None, 1)),
            "file_name": tfds.features.Text(),
        }))

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples(6), "test": self._generate_examples(3)}

    def _generate_examples(self, count):
        for i in range(count):
            height = 20 + i
            image = np.full((height, 30, 3), 10 * i, np.uint8)
            mask = np.ones((height, 30, 1), np.uint8)
            mask[:, 10:20] = 2
            mask[:, 20:] = 3
            yield i, {"image": image, "segmentation_mask": mask, "file_name": f"pet{i}.jpg"}


@pytest.fixture(scope="module")
def builder(tmp_path_factory):
    b = TinyPets(data_dir=str(tmp_path_factory.mktemp("tfds")))
    b.download_and_prepare(download_config=tfds.download.DownloadConfig(try_download_gcs=False))
    return b


def test_eval_whole_images_with_label_map(builder):
    ds = tfds_dataset(builder, "test", 3, False, PreprocessConfig(crop_size=None),
                      name_key="file_name", label_map=lambda m: tf.cast(m, tf.int32) - 1)
    (batch,) = list(ds)
    order = np.argsort(batch["image_name"].numpy())
    assert sorted(batch["image_name"].numpy().tolist()) == [b"pet0.jpg", b"pet1.jpg",
                                                            b"pet2.jpg"]
    assert batch["image"].shape == (3, 22, 30, 3)
    label = batch["label"].numpy()[order[0]]  # pet0: 20 rows, padded to 22 with ignore.
    np.testing.assert_array_equal(label[:20, :, 0], np.repeat([[0] * 10 + [1] * 10 + [2] * 10],
                                                              20, axis=0))
    np.testing.assert_array_equal(label[20:], 255)
    np.testing.assert_array_equal(batch["image"].numpy()[order[0], 20:], 127.5)


def test_training_crops_and_determinism(builder):
    def first(seed):
        ds = tfds_dataset(builder, "train", 4, True, PreprocessConfig(crop_size=(16, 16)),
                          seed=seed, label_map=lambda m: tf.cast(m, tf.int32) - 1)
        return next(iter(ds))

    a, b = first(1), first(1)
    assert a["image"].shape == (4, 16, 16, 3) and a["label"].shape == (4, 16, 16, 1)
    assert set(np.unique(a["label"])) <= {0, 1, 2, 255}
    np.testing.assert_array_equal(a["image"], b["image"])
    np.testing.assert_array_equal(a["label"], b["label"])


def test_missing_feature_is_a_clear_error(builder):
    with pytest.raises(DataError, match="has no feature 'mask'"):
        tfds_dataset(builder, "train", 1, True, label_key="mask")
