"""Segmentation metrics from a confusion matrix (the original's mIoU and more)."""

from __future__ import annotations

import numpy as np


def confusion_matrix(labels, predictions, num_classes: int, ignore_label: int = 255) -> np.ndarray:
    """[num_classes, num_classes] counts, rows = ground truth, columns = prediction.

    Pixels labelled ``ignore_label`` are skipped; other labels outside [0, num_classes) are
    an error (they are the usual cause of wrong scores and NaN losses).
    """
    labels = np.asarray(labels).ravel().astype(np.int64)
    predictions = np.asarray(predictions).ravel().astype(np.int64)
    if labels.shape != predictions.shape:
        raise ValueError(f"labels {labels.shape} and predictions {predictions.shape} differ.")
    keep = labels != ignore_label
    labels, predictions = labels[keep], predictions[keep]
    bad = labels[(labels < 0) | (labels >= num_classes)]
    if bad.size:
        raise ValueError(
            f"label values {sorted(set(bad.tolist()))[:10]} are outside [0, {num_classes}) and "
            f"are not the ignore label {ignore_label}."
        )
    return np.bincount(
        labels * num_classes + predictions, minlength=num_classes * num_classes
    ).reshape(num_classes, num_classes)


def segmentation_metrics(matrix: np.ndarray) -> dict:
    """mIoU over present classes, per-class IoU, pixel / mean accuracy, frequency-weighted IoU.

    A class is present when it occurs in the ground truth or the predictions (the original's
    ``tf.metrics.mean_iou`` averaged over classes with a non-zero denominator); absent
    classes have IoU NaN and do not count.
    """
    matrix = np.asarray(matrix, dtype=np.float64)
    true_positive = np.diag(matrix)
    ground_truth = matrix.sum(axis=1)
    predicted = matrix.sum(axis=0)
    union = ground_truth + predicted - true_positive
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(union > 0, true_positive / union, np.nan)
        class_accuracy = np.where(ground_truth > 0, true_positive / ground_truth, np.nan)
    total = matrix.sum()
    frequency = ground_truth / total if total else ground_truth
    present = ~np.isnan(iou)
    return {
        "miou": float(np.nanmean(iou)) if present.any() else float("nan"),
        "per_class_iou": iou.tolist(),
        "pixel_accuracy": float(true_positive.sum() / total) if total else float("nan"),
        "mean_accuracy": float(np.nanmean(class_accuracy)) if present.any() else float("nan"),
        "frequency_weighted_iou": float(np.nansum(frequency * np.nan_to_num(iou))),
    }
