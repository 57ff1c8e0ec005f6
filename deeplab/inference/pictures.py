"""Pictures of predictions: colour masks, overlays with a legend of the classes present."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from deeplab.inference.colormap import label_to_color_image
from deeplab.runs.atomic import atomic_path


def class_fractions(labels: np.ndarray, class_names: Sequence[str] = ()) -> dict[str, float]:
    """Fraction of pixels per class present, largest first; names default to ``class <i>``.
    (A histogram, not a sort: linear in the pixels, no copy of a large image's labels.)"""
    counts = np.bincount(np.asarray(labels).ravel())
    ids = np.flatnonzero(counts)
    order = ids[np.argsort(-counts[ids], kind="stable")]
    total = labels.size
    return {(class_names[i] if i < len(class_names) else f"class {i}"): counts[i] / total
            for i in (int(i) for i in order)}


def overlay(image: np.ndarray, labels: np.ndarray, colormap: str = "pascal",
            alpha: float = 0.5, class_names: Sequence[str] = (), band: int = 256) -> np.ndarray:
    """The image blended with its colour mask, plus a legend panel on the right (RGB uint8).

    Background-like class 0 is left unpainted so the photo shows through. Blended ``band``
    rows at a time: a 12000x12000 photo needs its uint8 result and a few bands of floats,
    not gigabytes of float copies.
    """
    height = image.shape[0]
    legend = _legend(labels, colormap, class_names, height)
    out = np.empty((height, image.shape[1] + legend.shape[1], 3), np.uint8)
    out[:, image.shape[1]:] = legend
    for top in range(0, height, band):
        rows = slice(top, top + band)
        part = image[rows, :, :3].astype(np.float32)
        color = label_to_color_image(labels[rows], colormap).astype(np.float32)
        painted = (labels[rows] != 0)[..., None]
        blended = np.where(painted, (1 - alpha) * part + alpha * color, part)
        out[rows, : image.shape[1]] = blended.round().astype(np.uint8)
    return out


def _legend(labels, colormap, class_names, height) -> np.ndarray:
    fractions = class_fractions(labels, class_names)
    ids = [int(i) for i in np.flatnonzero(np.bincount(np.asarray(labels).ravel()))]
    names = {(class_names[i] if i < len(class_names) else f"class {i}"): i for i in ids}
    row, width = 22, 200
    panel = np.full((max(height, row * (len(fractions) + 1)), width, 3), 255, np.uint8)
    swatches = label_to_color_image(np.asarray([list(names.values())]), colormap)[0]
    lookup = dict(zip(names.values(), swatches))
    for k, (name, fraction) in enumerate(fractions.items()):
        top = 6 + k * row
        cv2.rectangle(panel, (6, top), (24, top + 16), [int(c) for c in lookup[names[name]]], -1)
        cv2.rectangle(panel, (6, top), (24, top + 16), (0, 0, 0), 1)
        cv2.putText(panel, f"{name} {100 * fraction:.1f}%", (30, top + 13),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.42, (0, 0, 0), 1, cv2.LINE_AA)
    return panel[:height] if panel.shape[0] > height else panel


def write_png(path: Path, rgb_or_labels: np.ndarray) -> None:
    """Writes atomically (temp file, then rename)."""
    array = rgb_or_labels
    if array.ndim == 3:
        array = cv2.cvtColor(array, cv2.COLOR_RGB2BGR)
    with atomic_path(path) as temporary:
        if not cv2.imwrite(temporary, array):
            raise OSError(f"cannot write {path}")
