"""Image sources for the analysis tools: random images, a folder of images, an .npz file.

Every source is a plain iterable of ``[H, W, 3]`` float32 arrays with values 0-255, all of
one size, which is what :func:`deeplab.analysis.erf.compute_erf` averages over.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import cv2
import numpy as np

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".tif", ".tiff")


def random_images(count: int, size: tuple[int, int], seed: int = 0) -> Iterator[np.ndarray]:
    """``count`` images of uniform noise in [0, 255] (seeded, so runs repeat)."""
    rng = np.random.default_rng(seed)
    for _ in range(count):
        yield rng.uniform(0.0, 255.0, size=(*size, 3)).astype(np.float32)


def fit_image(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resizes so the image covers ``size`` (aspect kept), then centre-crops to it."""
    if image.ndim == 2:
        image = np.stack([image] * 3, axis=-1)
    if image.ndim != 3 or image.shape[-1] not in (3, 4):
        raise ValueError(f"expected an HxWx3 image, got shape {image.shape}.")
    image = image[..., :3].astype(np.float32)
    height, width = size
    scale = max(height / image.shape[0], width / image.shape[1])
    resized_h = max(height, round(image.shape[0] * scale))
    resized_w = max(width, round(image.shape[1] * scale))
    if (resized_h, resized_w) != image.shape[:2]:
        image = cv2.resize(image, (resized_w, resized_h), interpolation=cv2.INTER_LINEAR)
    top = (resized_h - height) // 2
    left = (resized_w - width) // 2
    return image[top : top + height, left : left + width]


def load_images(path: str, size: tuple[int, int], limit: int | None = None) -> Iterator[np.ndarray]:
    """Images from a folder (png/jpg/bmp/..., sorted by name) or an ``.npz`` file, fitted to size.

    An ``.npz`` may hold ``[H, W, 3]`` arrays or ``[N, H, W, 3]`` stacks (0-255 values).

    Raises:
        ValueError: the path does not exist, or holds no image.
    """
    arrays = _npz_arrays(path) if path.endswith(".npz") else _folder_arrays(path)
    count = 0
    for array in arrays:
        if limit is not None and count >= limit:
            return
        yield fit_image(array, size)
        count += 1
    if count == 0:
        raise ValueError(f"no images in {path!r}.")


def _folder_arrays(path: str) -> Iterator[np.ndarray]:
    if not os.path.isdir(path):
        raise ValueError(f"{path!r} is not a directory or an .npz file.")
    for name in sorted(os.listdir(path)):
        if not name.lower().endswith(IMAGE_EXTENSIONS):
            continue
        bgr = cv2.imread(os.path.join(path, name), cv2.IMREAD_COLOR)
        if bgr is None:
            raise ValueError(f"cannot read {os.path.join(path, name)!r} as an image.")
        yield bgr[..., ::-1]


def _npz_arrays(path: str) -> Iterator[np.ndarray]:
    if not os.path.isfile(path):
        raise ValueError(f"{path!r} does not exist.")
    with np.load(path) as data:
        for key in data.files:
            array = data[key]
            yield from (array if array.ndim == 4 else [array])
