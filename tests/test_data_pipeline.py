"""The input pipeline over records: training, eval, test split, sharding, bad records."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest
import tensorflow as tf

from deeplab.data.descriptor import DatasetDescriptor
from deeplab.data.errors import DataError
from deeplab.data.pipeline import PreprocessConfig, diagnose_records, make_dataset
from deeplab.data.synthetic import SyntheticConfig, build_synthetic
from deeplab.data.writer import Sample, Task, build_records


@pytest.fixture(scope="module")
def synthetic_dir(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("synthetic"))
    build_synthetic(out, SyntheticConfig({"train": 12, "val": 5}, height=40, width=48),
                    num_shards=3)
    return out


def unlabeled_samples(count: int) -> list[Sample]:
    return [Sample(f"t{i}", np.full((9 + i, 11, 3), i, np.uint8), None, f"t{i}")
            for i in range(count)]


def test_training_batches(synthetic_dir):
    ds = make_dataset(synthetic_dir, "train", 4, is_training=True,
                      config=PreprocessConfig(crop_size=(33, 33)), seed=0)
    batch = next(iter(ds))
    assert batch["image"].shape == (4, 33, 33, 3) and batch["image"].dtype == tf.float32
    assert batch["label"].shape == (4, 33, 33, 1) and batch["label"].dtype == tf.int32
    assert set(np.unique(batch["label"])) <= {0, 1, 2, 3, 4, 5, 255}
    assert all(name.startswith(b"train_") for name in batch["image_name"].numpy())
    # Repeats forever and drops the remainder: 12 examples give endless full batches.
    assert [b["image"].shape[0] for b in ds.take(7)] == [4] * 7


def test_seed_makes_the_pipeline_deterministic(synthetic_dir):
    def first_batches(seed):
        ds = make_dataset(synthetic_dir, "train", 4, True, PreprocessConfig(crop_size=(33, 33)),
                          seed=seed)
        return [(b["image"].numpy(), b["label"].numpy(), b["image_name"].numpy())
                for b in ds.take(4)]

    a, b, c = first_batches(5), first_batches(5), first_batches(6)
    for x, y in zip(a, b, strict=True):
        for u, v in zip(x, y, strict=True):
            np.testing.assert_array_equal(u, v)
    assert any(not np.array_equal(x[0], y[0]) for x, y in zip(a, c, strict=True))


def test_eval_reads_every_image_whole_in_order(synthetic_dir):
    ds = make_dataset(synthetic_dir, "val", 2, is_training=False,
                      config=PreprocessConfig(crop_size=None))
    batches = list(ds)
    assert [b["image"].shape[0] for b in batches] == [2, 2, 1]
    names = [n.decode() for b in batches for n in b["image_name"].numpy()]
    assert names == [f"val_{i:06d}" for i in range(5)]
    assert batches[0]["image"].shape == (2, 40, 48, 3)
    assert batches[0]["valid_height"].numpy().tolist() == [40, 40]


def test_eval_pads_mixed_sizes_with_mean_and_ignore(tmp_path):
    def mixed(i):
        return [Sample(f"m{i}", np.full((10 + 5 * i, 12, 3), 9, np.uint8),
                       np.ones((10 + 5 * i, 12), np.uint8), f"m{i}")]

    desc = DatasetDescriptor("mixed", {}, num_classes=2, ignore_label=255)
    build_records(str(tmp_path), desc, {"val": [Task(mixed, (i,)) for i in range(2)]}, 1)
    batch = next(iter(make_dataset(str(tmp_path), "val", 2, False,
                                   PreprocessConfig(crop_size=None))))
    assert batch["image"].shape == (2, 15, 12, 3)
    np.testing.assert_array_equal(batch["image"][0, 10:], 127.5)
    np.testing.assert_array_equal(batch["label"][0, 10:], 255)
    np.testing.assert_array_equal(batch["label"][1], 1)
    assert batch["valid_height"].numpy().tolist() == [10, 15]


def test_test_split_without_labels(tmp_path):
    desc = DatasetDescriptor("t", {}, num_classes=2, ignore_label=255)
    build_records(str(tmp_path), desc, {"test": [Task(unlabeled_samples, (3,), count=3)]}, 1)
    ds = make_dataset(str(tmp_path), "test", 1, is_training=False,
                      config=PreprocessConfig(crop_size=None))
    batches = list(ds)
    assert len(batches) == 3 and "label" not in batches[0]
    assert batches[2]["image"].shape == (1, 11, 11, 3)
    # Asking for labels anyway gives all-ignore labels rather than a KeyError.
    ds = make_dataset(str(tmp_path), "test", 1, False, PreprocessConfig(crop_size=None),
                      with_labels=True)
    np.testing.assert_array_equal(next(iter(ds))["label"], 255)
    with pytest.raises(DataError, match="training needs labels"):
        make_dataset(str(tmp_path), "test", 1, is_training=True)


def test_as_supervised(synthetic_dir):
    image, label = next(iter(make_dataset(synthetic_dir, "train", 2, True,
                                          PreprocessConfig(crop_size=(17, 17)),
                                          as_supervised=True)))
    assert image.shape == (2, 17, 17, 3) and label.shape == (2, 17, 17, 1)


def test_input_context_shards_files_and_batch(synthetic_dir):
    names = []
    for pipeline_id in range(3):
        context = tf.distribute.InputContext(num_input_pipelines=3,
                                             input_pipeline_id=pipeline_id,
                                             num_replicas_in_sync=3)
        ds = make_dataset(synthetic_dir, "train", 6, is_training=False,
                          config=PreprocessConfig(crop_size=None), input_context=context)
        batches = list(ds)
        assert batches[0]["image"].shape[0] == 2  # 6 global / 3 replicas.
        names.append({n for b in batches for n in b["image_name"].numpy()})
    assert [len(n) for n in names] == [4, 4, 4]
    assert len(set.union(*names)) == 12  # Disjoint, and together the whole split.


def test_missing_split_is_a_clear_error(synthetic_dir):
    with pytest.raises(DataError, match=r"no records for split 'test'.*splits present: "
                                        r"\['train', 'val'\]"):
        make_dataset(synthetic_dir, "test", 1, False)


def test_truncated_record_fails_at_construction_naming_the_file(synthetic_dir, tmp_path):
    broken = str(tmp_path / "broken")
    shutil.copytree(synthetic_dir, broken)
    shard = os.path.join(broken, "val-00001-of-00003.tfrecord")
    data = open(shard, "rb").read()
    open(shard, "wb").write(data[:-100])
    with pytest.raises(DataError, match=r"val-00001-of-00003\.tfrecord' is truncated"):
        make_dataset(broken, "val", 1, False)


def test_corrupt_record_is_found_by_diagnose_records(synthetic_dir, tmp_path):
    broken = str(tmp_path / "corrupt")
    shutil.copytree(synthetic_dir, broken)
    shard = os.path.join(broken, "val-00002-of-00003.tfrecord")
    data = bytearray(open(shard, "rb").read())
    data[100] ^= 0xFF  # Inside the first payload: only the data CRC can see it.
    open(shard, "wb").write(bytes(data))
    ds = make_dataset(broken, "val", 1, False, PreprocessConfig(crop_size=None))
    with pytest.raises(tf.errors.DataLossError):
        list(ds)
    files = sorted(os.path.join(broken, f) for f in os.listdir(broken) if f.startswith("val-"))
    problems = diagnose_records(files)
    assert len(problems) == 1 and problems[0].startswith(shard + ": corrupt after 0 good")
