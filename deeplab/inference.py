"""Whole-image inference helpers: resize to fit, pad, predict, crop, resize back."""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np


def fit_size(height: int, width: int, target: int) -> tuple[int, int]:
    """Size with the longer side equal to ``target`` and the aspect ratio kept (the demo's)."""
    scale = target / max(height, width)
    return max(1, int(round(height * scale))), max(1, int(round(width * scale)))


def segment_whole_image(
    predict_labels: Callable[[np.ndarray], np.ndarray],
    image: np.ndarray,
    canvas: int,
    pad_value: float = 127.5,
) -> np.ndarray:
    """Labels [H, W] for an RGB image of any size with a fixed-size predictor.

    The image is resized (bilinear) so its longer side is ``canvas``, padded bottom/right to
    ``canvas`` x ``canvas`` with ``pad_value`` (the backbone's mean pixel, ~0 after
    preprocessing), ``predict_labels`` maps the [canvas, canvas, 3] uint8 canvas to
    [canvas, canvas] labels, and the valid window is resized back (nearest).
    """
    height, width = image.shape[:2]
    new_h, new_w = fit_size(height, width, canvas)
    resized = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    padded = np.full((canvas, canvas, 3), pad_value, dtype=np.float32)
    padded[:new_h, :new_w] = resized
    labels = np.asarray(predict_labels(np.round(padded).astype(np.uint8)))[:new_h, :new_w]
    return cv2.resize(labels.astype(np.int32), (width, height), interpolation=cv2.INTER_NEAREST)
