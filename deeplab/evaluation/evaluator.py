"""Evaluation: whole images of any size (or sliding windows), multi-scale + flip, mIoU."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import tensorflow as tf

from deeplab.evaluation.metrics import confusion_matrix, segmentation_metrics
from deeplab.inference.probabilities import predict_probabilities
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
    """

    def __init__(self, model, eval_scales: Sequence[float] = (1.0,),
                 add_flipped_images: bool = False, sliding_window=None):
        self.model = model
        self.num_classes = model.config.num_classes
        self.sliding_window = sliding_window
        self._predict = tf.function(
            lambda images: predict_probabilities(model, images, tuple(eval_scales),
                                                 add_flipped_images),
            input_signature=[tf.TensorSpec([1, None, None, 3], tf.float32)],
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
            for i in range(int(batch["image"].shape[0])):
                h, w = int(batch["valid_height"][i]), int(batch["valid_width"][i])
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
    text = json.dumps(metrics, indent=2, default=lambda v: None) + "\n"
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
    return metrics
