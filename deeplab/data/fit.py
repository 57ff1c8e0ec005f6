"""``(image, label)`` batches for Keras' ``model.fit``: the trainer's own input pipeline
(:func:`deeplab.data.pipeline.make_dataset`, or :func:`deeplab.data.tfds_adapter.tfds_dataset`
for a TFDS set) with the original's augmentation: random scale 0.5..2.0 in steps of 0.25,
a crop padded with the backbone's mean pixel (labels with the ignore label), left-right
flips. Fine-tuning a zoo model the Keras way::

    model = deeplab.from_preset("mobilenetv2_coco_voc_trainaug", num_classes=6)
    model.compile(optimizer=keras.optimizers.SGD(0.001, momentum=0.9),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True,
                                                                  ignore_class=255))
    model.fit(deeplab.fit_dataset("my/tfrecord", "train", 8, (513, 513), model), epochs=1,
              steps_per_epoch=1000)

The loss ``fit`` reports is the trainer's: the cross-entropy over the pixels that are not
void, plus the model's weight decay (``model.losses``); ``tests/test_fit.py`` checks it.
"""

from __future__ import annotations

from pathlib import Path

import tensorflow as tf

from deeplab.data.input_preprocess import PreprocessConfig

TFDS_PREFIX = "tfds:"


def fit_dataset(source, split: str = "train", batch_size: int = 8,
                crop_size: tuple[int, int] | None = (513, 513), model=None,
                is_training: bool = True, seed: int | None = None,
                preprocess: PreprocessConfig | None = None, **tfds_options) -> tf.data.Dataset:
    """Batches of ``(image, label)`` for ``model.fit`` (training) or its ``validation_data``.

    Args:
        source: a folder of records written by our converters (``<split>-*.tfrecord`` and
            ``dataset.json``), or a TFDS data set as ``"tfds:<name>"`` or a TFDS builder
            (prepared beforehand; nothing is downloaded).
        split: the split (a TFDS split may slice: ``"train[:90%]"``).
        batch_size: images per batch.
        crop_size: training crops (height, width); at eval the size images are padded to,
            None for whole images.
        model: the DeepLab model (or its ModelConfig) the batches feed: crops are padded
            with its backbone's mean pixel, as the trainer pads them. Default 127.5.
        is_training: random scale, crop and flip, shuffled and repeated; False: eval
            batches, once, in order.
        seed: makes the order and the augmentation repeat.
        preprocess: all the original's preprocessing settings at once (overrides
            ``crop_size`` and the mean pixel).
        tfds_options: for a TFDS source, :func:`deeplab.data.tfds_adapter.tfds_dataset`'s
            (``image_key``, ``label_key``, ``label_map``, ``data_dir``...).

    Returns:
        A ``tf.data.Dataset`` of (float32 [B, H, W, 3] images 0..255, int32 [B, H, W, 1]
        labels with 255 for void).
    """
    if preprocess is None:
        config = getattr(model, "config", model)
        mean = config.backbone_spec.mean_pixel if config is not None else 127.5
        preprocess = PreprocessConfig(crop_size=tuple(crop_size) if crop_size else None,
                                      mean_pixel=mean)
    is_tfds = not isinstance(source, (str, Path)) or str(source).startswith(TFDS_PREFIX)
    if is_tfds:
        from deeplab.data.tfds_adapter import tfds_dataset

        name = source[len(TFDS_PREFIX):] if isinstance(source, str) else source
        return tfds_dataset(name, split, batch_size, is_training, preprocess, seed=seed,
                            as_supervised=True, **tfds_options)
    if tfds_options:
        raise ValueError(f"fit_dataset: {sorted(tfds_options)} apply to a TFDS source "
                         f"('tfds:<name>'), not to the records in {source}")
    from deeplab.data.pipeline import make_dataset

    return make_dataset(str(source), split, batch_size, is_training, preprocess, seed=seed,
                        as_supervised=True)
