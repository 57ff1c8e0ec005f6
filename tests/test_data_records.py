"""The record format, the writer (atomic, idempotent, parallel) and dataset.json."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import tensorflow as tf
from data_test_utils import blocks_label, jpeg_bytes, rgb

from deeplab.data import records
from deeplab.data.descriptor import DatasetDescriptor, get_dataset, registered_datasets
from deeplab.data.errors import DataError
from deeplab.data.writer import Sample, Task, build_records, shard_ranges

DESC = DatasetDescriptor("tiny", {"train": 0}, num_classes=3, ignore_label=255,
                         class_names=("bg", "a", "b"))


def jpeg_samples(start: int, count: int, bad_index: int = -1) -> list[Sample]:
    """Task function: 20x30 JPEG images with 3-band labels; `bad_index` gets label value 7."""
    out = []
    for i in range(start, start + count):
        label = blocks_label(20, 30)
        if i == bad_index:
            label[0, 0] = 7
        out.append(Sample(f"img{i:03d}", jpeg_bytes(rgb(20, 30, i)), label, f"img{i}.jpg"))
    return out


def tasks(n: int, per_task: int = 2, bad_index: int = -1) -> list[Task]:
    return [Task(jpeg_samples, (s, min(per_task, n - s), bad_index), count=min(per_task, n - s))
            for s in range(0, n, per_task)]


def read_all(path: str) -> list[tf.train.Example]:
    return [tf.train.Example.FromString(r.numpy()) for r in tf.data.TFRecordDataset(path)]


def test_encoder_matches_tf_example_proto():
    features = {"image/encoded": b"\x00\xffabc", "image/filename": "2007_000063",
                "image/height": 375, "image/width": 500, "image/channels": 3,
                "image/segmentation/class/encoded": b"", "neg": -5}
    ours = tf.train.Example.FromString(records.encode_example(features))
    expected = tf.train.Example(features=tf.train.Features(feature={
        k: tf.train.Feature(bytes_list=tf.train.BytesList(
            value=[v.encode() if isinstance(v, str) else v]))
        if isinstance(v, (bytes, str)) else
        tf.train.Feature(int64_list=tf.train.Int64List(value=[v]))
        for k, v in features.items()}))
    assert ours == expected


def test_shard_names_and_ranges():
    assert records.shard_filename("train", 1, 4) == "train-00001-of-00004.tfrecord"
    assert records.parse_shard_filename("/x/val_fine-00009-of-00010.tfrecord") == (
        "val_fine", 9, 10)
    assert records.parse_shard_filename("train-1-of-4.tfrecord") is None
    assert shard_ranges(10, 4) == [(0, 2), (2, 5), (5, 7), (7, 10)]
    assert shard_ranges(3, 4) == [(0, 1), (1, 2), (2, 3)]  # Never an empty shard.


def test_masked_crc_matches_tf_writer(tmp_path):
    path = str(tmp_path / "r.tfrecord")
    with tf.io.TFRecordWriter(path) as w:
        w.write(b"hello")
    data = open(path, "rb").read()
    assert int.from_bytes(data[8:12], "little") == records.masked_crc32c(data[:8])
    assert records.crc32c(b"123456789") == 0xE3069283  # The CRC-32C check value.
    assert records.check_record_framing(path) == 1


def test_written_records_exact_contents(tmp_path):
    out = str(tmp_path / "rec")
    desc = build_records(out, DESC, {"train": tasks(5), "val": tasks(2)}, num_shards=4)
    assert desc.splits_to_sizes == {"train": 5, "val": 2}
    assert sorted(os.listdir(out)) == [
        "dataset.json",
        "train-00000-of-00004.tfrecord", "train-00001-of-00004.tfrecord",
        "train-00002-of-00004.tfrecord", "train-00003-of-00004.tfrecord",
        "val-00000-of-00002.tfrecord", "val-00001-of-00002.tfrecord"]
    per_shard = [len(read_all(os.path.join(out, f"train-0000{k}-of-00004.tfrecord")))
                 for k in range(4)]
    assert per_shard == [1, 1, 1, 2]
    example = read_all(os.path.join(out, "train-00003-of-00004.tfrecord"))[1]
    feature = example.features.feature
    assert sorted(feature) == sorted([
        "image/encoded", "image/filename", "image/format", "image/height", "image/width",
        "image/channels", "image/segmentation/class/encoded", "image/segmentation/class/format"])
    assert feature["image/filename"].bytes_list.value == [b"img004"]
    assert feature["image/format"].bytes_list.value == [b"jpeg"]
    assert feature["image/segmentation/class/format"].bytes_list.value == [b"png"]
    assert feature["image/height"].int64_list.value == [20]
    assert feature["image/width"].int64_list.value == [30]
    assert feature["image/channels"].int64_list.value == [3]
    # The JPEG is stored byte for byte; the label as a single-channel PNG, bit-exact.
    assert feature["image/encoded"].bytes_list.value[0] == jpeg_bytes(rgb(20, 30, 4))
    label = tf.io.decode_png(feature["image/segmentation/class/encoded"].bytes_list.value[0])
    assert label.shape == (20, 30, 1)
    np.testing.assert_array_equal(label[..., 0], blocks_label(20, 30))
    info = json.load(open(os.path.join(out, "dataset.json")))
    assert info["name"] == "tiny" and info["num_classes"] == 3 and info["ignore_label"] == 255
    assert list(info["splits"]) == ["train", "val"]
    assert info["splits"]["train"]["num_examples"] == 5
    assert info["splits"]["train"]["num_shards"] == 4
    loaded = get_dataset(out)
    assert loaded.splits_to_sizes == {"train": 5, "val": 2}
    assert loaded.class_names == ("bg", "a", "b")
    assert get_dataset(os.path.join(out, "dataset.json")) == loaded


def test_rerun_is_idempotent_and_rebuilds_on_change(tmp_path, caplog):
    out = str(tmp_path / "rec")
    build_records(out, DESC, {"train": tasks(4)}, num_shards=2)
    shard = os.path.join(out, "train-00000-of-00002.tfrecord")
    before = (os.path.getmtime(shard), open(shard, "rb").read())
    with caplog.at_level("INFO", logger="deeplab.data"):
        build_records(out, DESC, {"train": tasks(4)}, num_shards=2)
    assert "up to date" in caplog.text
    assert (os.path.getmtime(shard), open(shard, "rb").read()) == before
    # A different shard count rebuilds and removes the old shards.
    build_records(out, DESC, {"train": tasks(4)}, num_shards=3)
    assert sorted(f for f in os.listdir(out) if f.endswith(".tfrecord")) == [
        "train-00000-of-00003.tfrecord", "train-00001-of-00003.tfrecord",
        "train-00002-of-00003.tfrecord"]
    # overwrite=True rebuilds with identical bytes (deterministic output).
    data = open(os.path.join(out, "train-00001-of-00003.tfrecord"), "rb").read()
    build_records(out, DESC, {"train": tasks(4)}, num_shards=3, overwrite=True)
    assert open(os.path.join(out, "train-00001-of-00003.tfrecord"), "rb").read() == data


def test_failure_leaves_nothing_half_written(tmp_path):
    out = str(tmp_path / "rec")
    build_records(out, DESC, {"train": tasks(4)}, num_shards=2)
    good = {f: open(os.path.join(out, f), "rb").read() for f in os.listdir(out)}
    with pytest.raises(DataError, match=r"img3\.jpg.*values \[7\] outside 0\.\.2"):
        build_records(out, DESC, {"train": tasks(6, bad_index=3)}, num_shards=3)
    assert {f: open(os.path.join(out, f), "rb").read() for f in os.listdir(out)} == good


def test_parallel_workers_write_identical_bytes(tmp_path):
    serial = str(tmp_path / "serial")
    parallel = str(tmp_path / "parallel")
    build_records(serial, DESC, {"train": tasks(8)}, num_shards=2, num_workers=1)
    build_records(parallel, DESC, {"train": tasks(8)}, num_shards=2, num_workers=2)
    for name in ("train-00000-of-00002.tfrecord", "train-00001-of-00002.tfrecord"):
        assert open(os.path.join(serial, name), "rb").read() == open(
            os.path.join(parallel, name), "rb").read()


def test_empty_split_is_an_error(tmp_path):
    with pytest.raises(DataError, match="split 'train' has no examples"):
        build_records(str(tmp_path), DESC, {"train": []}, num_shards=1)


def test_registry_builtins():
    assert {"pascal_voc_seg", "cityscapes", "ade20k", "synthetic"} <= set(registered_datasets())
    voc = get_dataset("pascal_voc_seg")
    assert (voc.num_classes, voc.ignore_label) == (21, 255)
    assert dict(voc.splits_to_sizes) == {"train": 1464, "train_aug": 10582, "trainval": 2913,
                                         "val": 1449}
    assert voc.class_names[15] == "person"
    city = get_dataset("cityscapes")
    assert (city.num_classes, city.ignore_label) == (19, 255)
    assert dict(city.splits_to_sizes) == {"train_fine": 2975, "val_fine": 500,
                                          "test_fine": 1525}
    ade = get_dataset("ade20k")
    assert (ade.num_classes, ade.ignore_label, len(ade.class_names)) == (151, 0, 151)
    assert dict(ade.splits_to_sizes) == {"train": 20210, "val": 2000}
    with pytest.raises(DataError, match="unknown dataset 'nope'"):
        get_dataset("nope")


def test_descriptor_rejects_inconsistent_values():
    with pytest.raises(DataError, match="2 class names given for num_classes=3"):
        DatasetDescriptor("x", {}, 3, 255, ("a", "b"))
    with pytest.raises(DataError, match="ignore_label 1 is a class id"):
        DatasetDescriptor("x", {}, 3, 1)


def test_progress_lines_have_counts_rate_and_eta():
    from deeplab.data.progress import Progress, format_duration

    lines = []
    progress = Progress(10, "train", interval=0.0, log=lines.append)
    progress.update(3)
    progress.close()
    assert lines[0].startswith("train: 3/10 examples (30.0%), ")
    assert "/s, elapsed 0:00:00, ETA " in lines[0]
    assert format_duration(3725) == "1:02:05"
