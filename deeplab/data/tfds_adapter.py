"""Feed a TensorFlow Datasets data set with an image and a segmentation mask to the pipeline.

Nothing is downloaded: the data set must already be prepared in `data_dir` (``tfds build`` or
``builder.download_and_prepare()``). Feature names are configurable, so any TFDS data set with
an image feature and a mask feature works (e.g. ``oxford_iiit_pet``: ``image`` and
``segmentation_mask``, with ``label_map=lambda m: m - 1`` for its 1..3 trimap).
"""

from __future__ import annotations

from collections.abc import Callable

import tensorflow as tf

from deeplab.data.errors import DataError
from deeplab.data.exif import decode_oriented
from deeplab.data.pipeline import PreprocessConfig, build_pipeline


def _builder(name_or_builder, data_dir: str | None):
    import tensorflow_datasets as tfds

    if not isinstance(name_or_builder, str):
        return name_or_builder
    try:
        return tfds.builder(name_or_builder, data_dir=data_dir)
    except Exception as e:  # tfds raises several types for unknown names.
        raise DataError(f"TFDS data set {name_or_builder!r} is not available: {e}") from None


def tfds_dataset(
    name_or_builder,
    split: str,
    batch_size: int,
    is_training: bool,
    config: PreprocessConfig | None = None,
    image_key: str = "image",
    label_key: str | None = "segmentation_mask",
    name_key: str | None = None,
    label_map: Callable[[tf.Tensor], tf.Tensor] | None = None,
    ignore_label: int = 255,
    data_dir: str | None = None,
    shuffle_buffer: int = 500,
    repeat: bool | None = None,
    drop_remainder: bool | None = None,
    seed: int | None = None,
    input_context: tf.distribute.InputContext | None = None,
    as_supervised: bool = False,
) -> tf.data.Dataset:
    """A TFDS split as the same batched, preprocessed dataset as `make_dataset` gives.

    Args:
      name_or_builder: a TFDS name (``"oxford_iiit_pet:4.*"``) or a builder instance.
      split: TFDS split (slicing such as ``"train[:90%]"`` works).
      batch_size: global batch size (per replica when `input_context` is given).
      is_training: training or eval preprocessing, as in `make_dataset`.
      config: preprocessing settings.
      image_key, label_key: feature names of the image and the mask; `label_key` None reads
        images only (inference).
      name_key: optional feature holding an image name (e.g. ``file_name``).
      label_map: optional function applied to the mask (e.g. to shift ids or mark void).
      ignore_label: void label value after `label_map`.
      data_dir: TFDS data directory.
      Other arguments: as in `make_dataset`.

    Raises:
      DataError: the data set is not prepared, or the features are missing.
    """
    import tensorflow_datasets as tfds

    config = config or PreprocessConfig()
    builder = _builder(name_or_builder, data_dir)
    features = builder.info.features
    for key in (image_key, label_key, name_key):
        if key is not None and key not in features:
            raise DataError(f"TFDS data set {builder.name!r} has no feature {key!r}; its "
                            f"features are {sorted(features.keys())}")
    read_config = tfds.ReadConfig(input_context=input_context, shuffle_seed=seed)
    # TFDS decodes images without their EXIF orientation; decode the photo here instead.
    encoded_image = isinstance(features[image_key], tfds.features.Image)
    decoders = {image_key: tfds.decode.SkipDecoding()} if encoded_image else None
    if input_context is not None:
        batch_size = input_context.get_per_replica_batch_size(batch_size)
    try:
        elements = builder.as_dataset(split=split, shuffle_files=is_training,
                                      read_config=read_config, decoders=decoders)
    except (AssertionError, ValueError, FileNotFoundError) as e:
        raise DataError(f"TFDS data set {builder.name!r} split {split!r} is not prepared in "
                        f"{builder.data_dir!r} ({e}); prepare it first (tfds build), this code "
                        "never downloads") from None

    def to_sample(element: dict) -> dict:
        image = decode_oriented(element[image_key]) if encoded_image else element[image_key]
        if image.shape.rank == 2:
            image = image[..., None]
        if image.shape[-1] == 1:
            image = tf.image.grayscale_to_rgb(image)
        shape = tf.shape(image)
        sample = {
            "image": image,
            "image_name": element[name_key] if name_key else tf.constant(""),
            "height": tf.cast(shape[0], tf.int64),
            "width": tf.cast(shape[1], tf.int64),
        }
        if label_key is not None:
            label = element[label_key]
            if label.shape.rank == 2:
                label = label[..., None]
            if label_map is not None:
                label = label_map(label)
            sample["label"] = tf.cast(label, tf.int32)
        return sample

    return build_pipeline(elements, to_sample, batch_size, is_training, config, ignore_label,
                          with_label=label_key is not None, shuffle_buffer=shuffle_buffer,
                          repeat=repeat, drop_remainder=drop_remainder, seed=seed,
                          replica_seed_offset=input_context.input_pipeline_id
                          if input_context else 0, as_supervised=as_supervised)
