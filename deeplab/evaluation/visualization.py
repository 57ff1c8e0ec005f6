"""Pictures of a split's predictions in the original's vis layout (``deeplab-vis``)."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from deeplab.evaluation.evaluator import Evaluator
from deeplab.inference.colormap import label_to_color_image
from deeplab.inference.pictures import overlay, write_png

# The original vis.py's _CITYSCAPES_TRAIN_ID_TO_EVAL_ID.
CITYSCAPES_TRAIN_ID_TO_EVAL_ID = (7, 8, 11, 12, 13, 17, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28,
                                  31, 32, 33)


def cityscapes_eval_ids(labels: np.ndarray) -> np.ndarray:
    """Train ids 0..18 → the official evaluation ids; other values unchanged."""
    table = np.arange(256)
    table[: len(CITYSCAPES_TRAIN_ID_TO_EVAL_ID)] = CITYSCAPES_TRAIN_ID_TO_EVAL_ID
    return table[labels]


def visualize_split(model, batches, vis_logdir: str, colormap: str, class_names, raw: bool,
                    eval_scales=(1.0,), add_flipped_images=False, max_images=None,
                    crop_size=None, to_stored_size: bool = False, worst=None) -> int:
    """Writes the pictures for every image of ``batches``; returns the count.

    ``worst``: a :class:`~deeplab.evaluation.worst.WorstImages` that also scores every
    prediction (``batches`` must then carry labels).

    ``crop_size`` pads every image to it (the original's ``vis_crop_size``, see
    :class:`Evaluator`). ``to_stored_size``: the inputs were resized (``min/max_resize_value``),
    so predictions go back to the stored image's size (nearest) and the picture too
    (bilinear), as the original's vis.
    """
    results = Path(vis_logdir) / "segmentation_results"
    raw_results = Path(vis_logdir) / "raw_segmentation_results"
    results.mkdir(parents=True, exist_ok=True)
    if raw:
        raw_results.mkdir(parents=True, exist_ok=True)

    def save(index, batch, i, prediction):
        h, w = prediction.shape
        image = np.asarray(batch["image"][i, :h, :w]).round().astype(np.uint8)
        if to_stored_size:
            size = (int(batch["width"][i]), int(batch["height"][i]))
            prediction = cv2.resize(prediction.astype(np.int32), size,
                                    interpolation=cv2.INTER_NEAREST)
            image = cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)
        write_png(results / f"{index:06d}_image.png", image)
        write_png(results / f"{index:06d}_prediction.png",
                  label_to_color_image(prediction, colormap))
        write_png(results / f"{index:06d}_overlay.png",
                  overlay(image, prediction, colormap, 0.5, class_names))
        if raw:
            name = batch["image_name"][i].numpy().decode() or f"{index:06d}"
            ids = cityscapes_eval_ids(prediction) if colormap == "cityscapes" else prediction
            write_png(raw_results / f"{os.path.basename(name)}.png", ids.astype(np.uint8))

    evaluator = Evaluator(model, eval_scales, add_flipped_images, crop_size=crop_size)
    counter = {"n": 0}

    def on_prediction(index, batch, i, prediction):
        if worst is not None:
            worst.on_prediction(index, batch, i, prediction)
        save(index, batch, i, prediction)
        counter["n"] = index + 1

    evaluator.run(batches, ignore_label=255, max_images=max_images,
                  on_prediction=on_prediction)
    return counter["n"]
