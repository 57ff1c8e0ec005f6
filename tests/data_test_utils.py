"""Helpers for the data tests: tiny images and masks written in any format."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

VOC_PALETTE = []
for _i in range(256):
    _r = _g = _b = 0
    _c = _i
    for _j in range(8):
        _r |= ((_c >> 0) & 1) << (7 - _j)
        _g |= ((_c >> 1) & 1) << (7 - _j)
        _b |= ((_c >> 2) & 1) << (7 - _j)
        _c >>= 3
    VOC_PALETTE += [_r, _g, _b]


def rgb(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A deterministic uint8 RGB array."""
    return np.random.default_rng(seed).integers(0, 256, size=(height, width, 3), dtype=np.uint8)


def blocks_label(height: int, width: int, ids=(0, 1, 2), ignore: int | None = 255) -> np.ndarray:
    """A label of vertical bands of `ids`, with an ignore row at the bottom."""
    label = np.zeros((height, width), np.uint8)
    for k, value in enumerate(ids):
        label[:, k * width // len(ids):(k + 1) * width // len(ids)] = value
    if ignore is not None:
        label[-1, :] = ignore
    return label


def save(array: np.ndarray, path: Path, mode: str | None = None, fmt: str | None = None,
         palette: bool = False, **kwargs) -> Path:
    """Saves an array with PIL; `palette` makes a VOC palette PNG from a label."""
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(array, mode) if mode else Image.fromarray(array)
    if palette:
        image.putpalette(VOC_PALETTE)  # An "L" image becomes "P" with its values as indices.
    image.save(path, format=fmt, **kwargs)
    return path


def jpeg_bytes(array: np.ndarray, quality: int = 90) -> bytes:
    """JPEG-encodes an RGB array with PIL."""
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def read_records(dataset_dir, split: str) -> list[dict]:
    """Decodes every record of a split (in shard order) into numpy values."""
    import tensorflow as tf

    from deeplab.data import records

    out = []
    for path in records.list_shards(str(dataset_dir), split):
        for raw in tf.data.TFRecordDataset(path):
            f = tf.train.Example.FromString(raw.numpy()).features.feature
            label_bytes = f[records.LABEL_ENCODED].bytes_list.value[0]
            out.append({
                "filename": f[records.IMAGE_FILENAME].bytes_list.value[0].decode(),
                "format": f[records.IMAGE_FORMAT].bytes_list.value[0].decode(),
                "height": f[records.IMAGE_HEIGHT].int64_list.value[0],
                "width": f[records.IMAGE_WIDTH].int64_list.value[0],
                "encoded": f[records.IMAGE_ENCODED].bytes_list.value[0],
                "image": tf.io.decode_image(f[records.IMAGE_ENCODED].bytes_list.value[0],
                                            channels=3).numpy(),
                "label": tf.io.decode_png(label_bytes)[..., 0].numpy() if label_bytes else None,
            })
    return out


def records_without_descriptor(directory: Path, splits_to_sizes: dict, height: int,
                               width: int) -> Path:
    """Synthetic records under the given (the original's) split names with no dataset.json,
    so ``--dataset`` picks the original's built-in descriptor, as the original did."""
    from deeplab.data.synthetic import SyntheticConfig, build_synthetic

    build_synthetic(directory, SyntheticConfig(splits_to_sizes, height, width, 0),
                    num_shards=1, num_workers=1)
    (directory / "dataset.json").unlink()
    return directory
