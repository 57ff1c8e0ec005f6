"""Calibration images for full-integer quantisation, read from TFRecords."""

from __future__ import annotations

import numpy as np

from deeplab.inference.probabilities import fit_size


def fit_to_canvas(image: np.ndarray, canvas, pad_value=127.5) -> np.ndarray:
    """Resizes an RGB image to fit ``canvas`` (h, w) and pads bottom/right, as inference does."""
    import cv2

    h, w = fit_size(image.shape[0], image.shape[1], canvas)
    out = np.full((canvas[0], canvas[1], 3), pad_value, np.float32)
    out[:h, :w] = cv2.resize(image.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
    return out


def record_images(dataset_dir: str, split: str, crop_size, steps: int, dataset=None,
                  pad_value=127.5):
    """A callable yielding up to ``steps`` images of ``split`` fitted to ``crop_size``."""
    from deeplab.data.pipeline import PreprocessConfig, make_dataset

    def images():
        records = make_dataset(dataset_dir, split, 1, is_training=False,
                               config=PreprocessConfig(crop_size=None), dataset=dataset,
                               with_labels=False)
        for batch in records.take(steps):
            height = int(batch["valid_height"][0]) if "valid_height" in batch else None
            width = int(batch["valid_width"][0]) if "valid_width" in batch else None
            image = batch["image"][0].numpy()[:height, :width]
            yield fit_to_canvas(image, crop_size, pad_value)

    return images
