"""The input pipeline: records (or any source of image/label samples) to batches.

    shard files -> interleave(TFRecordDataset) -> [per-replica shard] -> shuffle -> repeat
      -> parse + decode + preprocess (parallel) -> batch -> prefetch

Records are shuffled while still serialised (cheap to hold), decoded by content (JPEG or PNG,
whatever ``image/format`` says, like the original), and preprocessed exactly as the original.
A seed makes everything deterministic: each element gets a stateless seed derived from the base
seed and its position in the stream.

Elements are dicts with ``image`` (float32, 0..255, [H,W,3]), ``label`` (int32, [H,W,1]; absent
for unlabeled splits), ``image_name``, ``height``, ``width`` (of the stored image) and, at eval,
``valid_height``/``valid_width`` (the size before padding). With ``as_supervised=True`` they are
``(image, label)`` tuples for `keras.Model.fit`.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

import tensorflow as tf

from deeplab.data import records
from deeplab.data.descriptor import DATASET_JSON, DatasetDescriptor, get_dataset
from deeplab.data.errors import DataError
from deeplab.data.input_preprocess import PreprocessConfig, preprocess_with_config

AUTOTUNE = tf.data.AUTOTUNE

_FEATURES = {
    records.IMAGE_ENCODED: tf.io.FixedLenFeature((), tf.string, default_value=""),
    records.IMAGE_FILENAME: tf.io.FixedLenFeature((), tf.string, default_value=""),
    records.IMAGE_FORMAT: tf.io.FixedLenFeature((), tf.string, default_value="jpeg"),
    records.IMAGE_HEIGHT: tf.io.FixedLenFeature((), tf.int64, default_value=0),
    records.IMAGE_WIDTH: tf.io.FixedLenFeature((), tf.int64, default_value=0),
    records.LABEL_ENCODED: tf.io.FixedLenFeature((), tf.string, default_value=""),
    records.LABEL_FORMAT: tf.io.FixedLenFeature((), tf.string, default_value="png"),
}


def decode_record(serialized: tf.Tensor, with_label: bool = True,
                  ignore_label: int = 255) -> dict[str, tf.Tensor]:
    """Parses one serialised example into a sample dict with uint8 image and label.

    A record with an empty label (unlabeled split) gets a label filled with `ignore_label`.
    """
    parsed = tf.io.parse_single_example(serialized, _FEATURES)
    image = tf.io.decode_image(parsed[records.IMAGE_ENCODED], channels=3,
                               expand_animations=False)
    sample = {
        "image": image,
        "image_name": parsed[records.IMAGE_FILENAME],
        "height": parsed[records.IMAGE_HEIGHT],
        "width": parsed[records.IMAGE_WIDTH],
    }
    if with_label:
        encoded = parsed[records.LABEL_ENCODED]
        shape = tf.shape(image)
        label = tf.cond(
            tf.strings.length(encoded) > 0,
            lambda: tf.io.decode_image(encoded, channels=1, expand_animations=False),
            lambda: tf.fill([shape[0], shape[1], 1], tf.constant(ignore_label, tf.uint8)))
        check = tf.debugging.Assert(
            tf.reduce_all(tf.equal(tf.shape(label)[:2], shape[:2])),
            ["label and image sizes differ in record", sample["image_name"]])
        with tf.control_dependencies([check]):
            sample["label"] = tf.identity(label)
    return sample


def resolve_descriptor(dataset_dir: str | None,
                       dataset: DatasetDescriptor | str | None) -> DatasetDescriptor | None:
    """The descriptor given, else the `dataset.json` in `dataset_dir`, else None."""
    if isinstance(dataset, DatasetDescriptor):
        return dataset
    if dataset is not None:
        return get_dataset(dataset)
    if dataset_dir is not None and tf.io.gfile.exists(f"{dataset_dir}/{DATASET_JSON}"):
        return get_dataset(dataset_dir)
    return None


def check_labeled(dataset_dir: str, split: str, dataset: DatasetDescriptor | str | None = None,
                  records_to_read: int = 32) -> float | None:
    """Fails unless `split` carries labels; returns the void fraction of its first records.

    Training and evaluation need labels: without them the pipeline would fill every label
    with the ignore label, so training reaches loss 0 and eval reports nan. Checked up front:
    the split's entry in ``dataset.json`` and the first `records_to_read` records.

    Raises:
      DataError: naming the split (and the shard file and key when records lack labels).
    """
    import numpy as np

    descriptor = resolve_descriptor(dataset_dir, dataset)
    if descriptor is not None and not descriptor.is_labeled(split):
        raise DataError(f"split {split!r} is marked unlabeled in {descriptor.name}'s "
                        "dataset.json: training and evaluation need labelled records; give a "
                        "labelled split (--train_split / --eval_split)")
    ignore_label = descriptor.ignore_label if descriptor else 255
    void = pixels = read = 0
    for path in records.list_shards(dataset_dir, split):
        for raw in tf.data.TFRecordDataset(path).take(records_to_read - read):
            example = tf.train.Example.FromString(raw.numpy())
            feature = example.features.feature.get(records.LABEL_ENCODED)
            values = feature.bytes_list.value if feature is not None else []
            if not values or not values[0]:
                state = "missing" if feature is None else "empty"
                raise DataError(
                    f"{path}: record {read} has no label ({records.LABEL_ENCODED!r} is "
                    f"{state}): training and evaluation need labelled records; convert split "
                    f"{split!r} with its masks")
            label = tf.io.decode_image(values[0], channels=1, expand_animations=False).numpy()
            void += int(np.sum(label == ignore_label))
            pixels += label.size
            read += 1
        if read >= records_to_read:
            break
    return void / pixels if pixels else None


def check_shards(files: Sequence[str]) -> int:
    """Checks the framing of local shard files (truncation); returns the record count."""
    total = 0
    for path in files:
        if "://" not in path:  # Remote files (gs://) are left to TF's own checks.
            total += records.check_record_framing(path)
    return total


def diagnose_records(files: Sequence[str]) -> list[str]:
    """Reads every record of every file with TF's CRC checks; returns one message per bad file.

    Use after a `tf.errors.DataLossError` from the pipeline, whose message names no file.
    """
    problems = []
    for path in files:
        count = 0
        try:
            for _ in tf.data.TFRecordDataset(path):
                count += 1
        except (tf.errors.DataLossError, tf.errors.InvalidArgumentError) as e:
            problems.append(f"{path}: corrupt after {count} good records ({e.message.strip()}); "
                            "rebuild this split with the converter")
    return problems


def _preprocess_fn(config: PreprocessConfig, is_training: bool, ignore_label: int,
                   with_label: bool) -> Callable[[dict, tf.Tensor | None], dict]:

    def fn(sample: dict, seed: tf.Tensor | None) -> dict:
        label = sample["label"] if with_label else None
        original, image, label = preprocess_with_config(
            sample["image"], label, config, ignore_label, is_training, seed)
        out = {key: sample[key] for key in ("image_name", "height", "width")}
        out["image"] = image
        if not is_training:
            # The real (unpadded) part of the eval image, which vis and export crop back to;
            # `original` is the image after the optional resize-to-range.
            out["valid_height"] = tf.shape(original)[0]
            out["valid_width"] = tf.shape(original)[1]
        if label is not None:
            out["label"] = label
        return out

    return fn


def build_pipeline(
    elements: tf.data.Dataset,
    to_sample: Callable[[tf.Tensor], dict],
    batch_size: int,
    is_training: bool,
    config: PreprocessConfig,
    ignore_label: int,
    with_label: bool = True,
    shuffle_buffer: int = 500,
    repeat: bool | None = None,
    drop_remainder: bool | None = None,
    seed: int | None = None,
    replica_seed_offset: int = 0,
    as_supervised: bool = False,
) -> tf.data.Dataset:
    """Shuffle, repeat, decode (`to_sample`), preprocess, batch and prefetch `elements`.

    This is the part shared by TFRecords and other sources (TFDS).
    """
    if is_training and not with_label:
        raise DataError("training needs labels, but this split is unlabeled")
    if is_training and config.crop_size is None:
        raise DataError("training needs a crop_size")
    repeat = is_training if repeat is None else repeat
    drop_remainder = is_training if drop_remainder is None else drop_remainder
    base_seed = seed if seed is not None else random.randrange(2**31 - 1)
    base_seed += 7919 * replica_seed_offset
    if is_training and shuffle_buffer > 1:
        elements = elements.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        elements = elements.repeat()
    preprocess = _preprocess_fn(config, is_training, ignore_label, with_label)

    @tf.autograph.experimental.do_not_convert  # Plain TF code: skip autograph's rewriting.
    def map_fn(index, element):
        element_seed = tf.stack([tf.constant(base_seed, tf.int64), index])
        return preprocess(to_sample(element), element_seed if is_training else None)

    ds = elements.enumerate().map(map_fn, num_parallel_calls=AUTOTUNE,
                                  deterministic=seed is not None or not is_training)
    mean = config.mean_pixel
    if is_training or batch_size == 1:
        ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    else:
        # Whole eval images differ in size: pad each batch to its largest image, the image with
        # the mean pixel and the label with the ignore label (as the original's eval padding).
        if not isinstance(mean, (int, float)) and len(set(mean)) != 1:
            raise DataError("eval batches of whole images need a scalar mean_pixel "
                            "(or batch_size=1)")
        values = {"image": float(mean if isinstance(mean, (int, float)) else mean[0]),
                  "image_name": "", "height": 0, "width": 0, "valid_height": 0,
                  "valid_width": 0, "label": ignore_label}
        padding = {key: tf.constant(values[key], spec.dtype)
                   for key, spec in ds.element_spec.items()}
        ds = ds.padded_batch(batch_size, padding_values=padding, drop_remainder=drop_remainder)
    if as_supervised:
        ds = ds.map(lambda b: (b["image"], b["label"]) if "label" in b else b["image"])
    options = tf.data.Options()
    options.deterministic = seed is not None or not is_training
    ds = ds.with_options(options)
    return ds.prefetch(AUTOTUNE)


def make_dataset(
    dataset_dir: str,
    split: str,
    batch_size: int,
    is_training: bool,
    config: PreprocessConfig | None = None,
    dataset: DatasetDescriptor | str | None = None,
    ignore_label: int | None = None,
    with_labels: bool | None = None,
    num_readers: int = 4,
    shuffle_buffer: int = 500,
    repeat: bool | None = None,
    drop_remainder: bool | None = None,
    seed: int | None = None,
    input_context: tf.distribute.InputContext | None = None,
    as_supervised: bool = False,
    check_records: bool = True,
) -> tf.data.Dataset:
    """The records of `split` in `dataset_dir` as a batched, preprocessed `tf.data.Dataset`.

    Args:
      dataset_dir: directory with ``<split>-%05d-of-%05d.tfrecord`` shards.
      split: split name.
      batch_size: global batch size (divided by the replicas when `input_context` is given).
      is_training: training (shuffle, random scale/crop/flip, repeat, drop_remainder) or eval.
      config: preprocessing settings; default `PreprocessConfig()` (crop 513, scale 0.5:0.25:2).
      dataset: descriptor, registry name or dataset.json path; default: `dataset_dir`'s
        dataset.json if present.
      ignore_label: overrides the descriptor's ignore label (default 255 without descriptor).
      with_labels: decode labels; default True unless the descriptor marks the split unlabeled
        or the split is named ``test``.
      num_readers: shard files read in parallel.
      shuffle_buffer: records in the shuffle buffer (training).
      repeat, drop_remainder: default to `is_training`.
      seed: makes the order and the augmentation deterministic.
      input_context: from `strategy.distribute_datasets_from_function`; shards the input per
        pipeline (files if there are enough, else records) and sets the per-replica batch.
      as_supervised: yield (image, label) tuples.
      check_records: check shard framing first, so a truncated file fails now, by name.

    Raises:
      DataError: missing records, truncated shards, unlabeled split used for training.
    """
    config = config or PreprocessConfig()
    descriptor = resolve_descriptor(dataset_dir, dataset)
    if ignore_label is None:
        ignore_label = descriptor.ignore_label if descriptor else 255
    if with_labels is None:
        with_labels = (descriptor.is_labeled(split) if descriptor else True) and split != "test"
    files = records.list_shards(dataset_dir, split)
    if check_records:
        check_shards(files)
    num_pipelines, pipeline_id = 1, 0
    if input_context is not None:
        num_pipelines = input_context.num_input_pipelines
        pipeline_id = input_context.input_pipeline_id
        batch_size = input_context.get_per_replica_batch_size(batch_size)
    file_ds = tf.data.Dataset.from_tensor_slices(files)
    shard_files = num_pipelines > 1 and len(files) >= num_pipelines
    if shard_files:
        file_ds = file_ds.shard(num_pipelines, pipeline_id)
    if is_training:
        file_ds = file_ds.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
    # Eval reads the shards one after the other, so results come in record order; decoding
    # is parallel either way, and that is where the time goes.
    cycle_length = max(1, min(num_readers, len(files))) if is_training else 1
    if cycle_length > 1:
        elements = file_ds.interleave(
            tf.data.TFRecordDataset, cycle_length=cycle_length, num_parallel_calls=AUTOTUNE,
            deterministic=seed is not None)
    else:
        elements = file_ds.interleave(tf.data.TFRecordDataset, cycle_length=1)
    if num_pipelines > 1 and not shard_files:
        elements = elements.shard(num_pipelines, pipeline_id)

    def to_sample(serialized):
        return decode_record(serialized, with_labels, ignore_label)

    return build_pipeline(
        elements, to_sample, batch_size, is_training, config, ignore_label,
        with_label=with_labels, shuffle_buffer=shuffle_buffer, repeat=repeat,
        drop_remainder=drop_remainder, seed=seed, replica_seed_offset=pipeline_id,
        as_supervised=as_supervised)
