"""Evaluation: whole images of any size (or sliding windows), multi-scale + flip, mIoU."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import tensorflow as tf

from deeplab.evaluation.metrics import confusion_matrix, segmentation_metrics
from deeplab.inference.probabilities import pad_with_mean, predict_probabilities
from deeplab.runs.atomic import write_text


def sliding_window_probabilities(predict, image: tf.Tensor, window: int, stride: int,
                                 num_classes: int) -> tf.Tensor:
    """Averages ``predict`` over overlapping ``window`` tiles (for images too large to fit).

    ``predict`` maps [1, h, w, 3] to probabilities [1, h, w, C]; tiles at the borders are
    shifted inside the image so every pixel is covered.
    """
    height, width = int(image.shape[1]), int(image.shape[2])

    def starts(size):
        if size <= window:
            return [0]
        positions = list(range(0, size - window, stride)) + [size - window]
        return sorted(set(positions))

    total = np.zeros((height, width, num_classes), np.float32)
    count = np.zeros((height, width, 1), np.float32)
    for top in starts(height):
        for left in starts(width):
            tile = image[:, top:top + window, left:left + window]
            probabilities = np.asarray(predict(tile))[0]
            h, w = probabilities.shape[:2]
            total[top:top + h, left:left + w] += probabilities
            count[top:top + h, left:left + w] += 1
    return tf.constant((total / count)[None])


class Evaluator:
    """Streams a split through a model into a confusion matrix.

    Args:
        model: a DeepLab model.
        eval_scales: inference scales (the original's ``--eval_scales``).
        add_flipped_images: average with left-right flipped inputs.
        sliding_window: (window, stride) to tile images larger than ``window``.
        crop_size: the original's ``eval_crop_size`` / ``vis_crop_size``: every image is
            padded to it (mean pixel) and a batch runs as one forward pass; images larger
            than it are refused, as the original required. None: whole images, one by one.
    """

    def __init__(self, model, eval_scales: Sequence[float] = (1.0,),
                 add_flipped_images: bool = False,
                 sliding_window: tuple[int, int] | None = None,
                 crop_size: tuple[int, int] | None = None):
        self.model = model
        self.num_classes = model.config.num_classes
        self.sliding_window = sliding_window
        self.crop_size = tuple(crop_size) if crop_size else None
        if self.crop_size and sliding_window:
            raise ValueError("--sliding_window and --eval_crop_size exclude each other: tile "
                             "large images, or pad every image to one crop.")
        self._predict = tf.function(
            lambda images: predict_probabilities(model, images, tuple(eval_scales),
                                                 add_flipped_images),
            input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32)],
        )

    def probabilities(self, image: tf.Tensor) -> tf.Tensor:
        """[1, H, W, C] class probabilities for one float 0-255 image [1, H, W, 3]."""
        if self.sliding_window:
            window, stride = self.sliding_window
            return sliding_window_probabilities(self._predict, image, window, stride,
                                                self.num_classes)
        return self._predict(image)

    def run(self, batches, ignore_label: int, max_images: int | None = None,
            progress=None, on_prediction=None) -> np.ndarray:
        """Confusion matrix over eval batches (dicts with image, label, valid sizes)."""
        matrix = np.zeros((self.num_classes, self.num_classes), np.int64)
        seen = 0
        for batch in batches:
            sizes = [(int(h), int(w)) for h, w in zip(np.asarray(batch["valid_height"]),
                                                       np.asarray(batch["valid_width"]))]
            cropped = self._crop_batch(batch, sizes) if self.crop_size else None
            for i, (h, w) in enumerate(sizes):
                if cropped is not None:
                    prediction = cropped[i, :h, :w]
                else:
                    image = batch["image"][i:i + 1, :h, :w]
                    prediction = np.argmax(np.asarray(self.probabilities(image))[0], -1)
                if "label" in batch:
                    label = np.asarray(batch["label"][i, :h, :w, 0])
                    matrix += confusion_matrix(label, prediction, self.num_classes,
                                               ignore_label)
                if on_prediction is not None:
                    on_prediction(seen, batch, i, prediction)
                seen += 1
                if progress is not None:
                    progress.update()
                if max_images is not None and seen >= max_images:
                    return matrix
        return matrix

    def _crop_batch(self, batch, sizes) -> np.ndarray:
        """Labels [N, crop_h, crop_w] of a batch padded to the crop, in one forward pass."""
        crop_h, crop_w = self.crop_size
        for index, (h, w) in enumerate(sizes):
            if h > crop_h or w > crop_w:
                name = batch["image_name"][index].numpy().decode() if "image_name" in batch else ""
                raise ValueError(
                    f"image {name or index} is {h}x{w}, larger than the crop {crop_h},{crop_w}: "
                    "the original required a crop size >= every image (e.g. 513,513 for VOC, "
                    "1025,2049 for Cityscapes); raise it, or leave it out to evaluate whole "
                    "images")
        mean = self.model.config.backbone_spec.mean_pixel
        images = tf.concat([pad_with_mean(batch["image"][i:i + 1, :h, :w], crop_h, crop_w, mean)
                            for i, (h, w) in enumerate(sizes)], axis=0)
        return np.argmax(np.asarray(self._predict(images)), -1)


def format_table(metrics: dict, class_names: Sequence[str]) -> str:
    """The metrics as a printable table: per-class IoU, then the summary numbers."""
    lines = [f"{'class':<24} {'IoU':>8}"]
    for index, iou in enumerate(metrics["per_class_iou"]):
        name = class_names[index] if index < len(class_names) else f"class {index}"
        shown = "     n/a" if iou != iou else f"{100 * iou:7.2f}%"
        lines.append(f"{name:<24} {shown}")
    lines.append("-" * 33)
    for key in ("miou", "pixel_accuracy", "mean_accuracy", "frequency_weighted_iou"):
        lines.append(f"{key:<24} {100 * metrics[key]:7.2f}%")
    return "\n".join(lines)


def write_metrics(eval_logdir: str | Path, metrics: dict, step: int | None) -> Path:
    """``metrics-<step>.json`` and ``metrics.json`` (latest), each written atomically."""
    directory = Path(eval_logdir)
    directory.mkdir(parents=True, exist_ok=True)
    fields = {k: v for k, v in metrics.items() if k != "confusion_matrix"}
    text = json.dumps(fields, indent=2, default=lambda v: None)
    if "confusion_matrix" in metrics:  # one line a row, not one line a count
        rows = ",\n".join(f"    {json.dumps(row)}" for row in metrics["confusion_matrix"])
        text = text[:-2] + f',\n  "confusion_matrix": [\n{rows}\n  ]\n}}'
    text += "\n"
    targets = [directory / "metrics.json"]
    if step is not None:
        targets.insert(0, directory / f"metrics-{step}.json")
    for target in targets:
        write_text(target, text.replace("NaN", "null"))
    return targets[0]


def named_metrics(matrix: np.ndarray, class_names: Sequence[str]) -> dict:
    metrics = segmentation_metrics(matrix)
    metrics["class_names"] = list(class_names)
    metrics["num_pixels"] = int(matrix.sum())
    # Rows: ground truth, columns: prediction (confusion-<step>.csv names them).
    metrics["confusion_matrix"] = np.asarray(matrix, np.int64).tolist()
    return metrics
