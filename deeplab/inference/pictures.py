"""Pictures of predictions: colour masks, overlays with a legend of the classes present."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from deeplab.inference.colormap import label_to_color_image
from deeplab.runs.atomic import atomic_path


def class_fractions(labels: np.ndarray, class_names: Sequence[str] = ()) -> dict[str, float]:
    """Fraction of pixels per class present, largest first; names default to ``class <i>``."""
    ids, counts = np.unique(labels, return_counts=True)
    order = np.argsort(-counts)
    total = labels.size
    return {
        (class_names[i] if i < len(class_names) else f"class {i}"): counts[k] / total
        for k, i in ((k, int(ids[k])) for k in order)
    }


def overlay(image: np.ndarray, labels: np.ndarray, colormap: str = "pascal",
            alpha: float = 0.5, class_names: Sequence[str] = ()) -> np.ndarray:
    """The image blended with its colour mask, plus a legend panel on the right (RGB uint8).

    Background-like class 0 is left unpainted so the photo shows through.
    """
    color = label_to_color_image(labels, colormap).astype(np.float32)
    image = image[..., :3].astype(np.float32)
    painted = labels != 0
    blended = image.copy()
    blended[painted] = (1 - alpha) * image[painted] + alpha * color[painted]
    return np.concatenate(
        [blended.round().astype(np.uint8), _legend(labels, colormap, class_names, image.shape[0])],
        axis=1,
    )


def _legend(labels, colormap, class_names, height) -> np.ndarray:
    fractions = class_fractions(labels, class_names)
    ids = [int(i) for i in np.unique(labels)]
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
