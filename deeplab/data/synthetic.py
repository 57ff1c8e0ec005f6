"""A deterministic synthetic segmentation data set, the default of the quickstart and the tests.

Each image has a textured, desaturated background and 2-6 objects of five classes, each with its
own shape, colour family and size range, drawn in random order so later objects occlude earlier
ones. As in PASCAL VOC, a band of ignore-label pixels separates regions of different classes.
Classes are told apart by colour and shape, so a small MobileNetV2 DeepLabv3+ learns the set to a
high mIoU in minutes on a CPU, which makes it a useful end-to-end check.

Every image depends only on (seed, split, index): any subset can be regenerated identically, in
any process.
"""

from __future__ import annotations

import dataclasses
import math

import cv2
import numpy as np

from deeplab.data.descriptor import (
    SYNTHETIC_CLASSES,
    SYNTHETIC_DEFAULT_SIZES,
    DatasetDescriptor,
)
from deeplab.data.writer import Sample, Task, build_records

IGNORE_LABEL = 255
# Saturated colour per object class; the background stays grey-ish, far from all of them.
CLASS_COLORS = {
    1: (220, 40, 40),    # disc: red
    2: (40, 190, 60),    # square: green
    3: (40, 70, 225),    # triangle: blue
    4: (235, 205, 30),   # cross: yellow
    5: (205, 50, 205),   # ring: magenta
}
# Size range (fraction of the short image side) per class, so sizes differ between classes.
_SIZE_RANGES = {1: (0.08, 0.16), 2: (0.14, 0.30), 3: (0.18, 0.34), 4: (0.16, 0.30),
                5: (0.12, 0.22)}
_SPLIT_IDS = {"train": 0, "val": 1, "test": 2}


def _background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Low-contrast grey texture: smooth blobs plus a random stripe pattern plus noise."""
    base = rng.uniform(70, 170)
    coarse = rng.normal(0, 18, size=(max(2, height // 16), max(2, width // 16)))
    smooth = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    yy, xx = np.mgrid[0:height, 0:width]
    angle = rng.uniform(0, math.pi)
    period = rng.uniform(6, 20)
    stripes = 10 * np.sin((xx * math.cos(angle) + yy * math.sin(angle)) * 2 * math.pi / period)
    gray = base + smooth + stripes + rng.normal(0, 5, size=(height, width))
    tint = rng.uniform(-12, 12, size=3)  # A slight tint; saturation stays far below objects'.
    image = gray[..., None] + tint[None, None, :]
    return np.clip(image, 0, 255)


def _shape_mask(rng: np.random.Generator, cls: int, height: int, width: int) -> np.ndarray:
    """A filled mask of one object of class `cls` at a random place and size."""
    mask = np.zeros((height, width), np.uint8)
    short = min(height, width)
    lo, hi = _SIZE_RANGES[cls]
    size = rng.uniform(lo, hi) * short
    cy, cx = rng.uniform(0.1, 0.9) * height, rng.uniform(0.1, 0.9) * width
    center = (int(round(cx)), int(round(cy)))
    angle = rng.uniform(0, 2 * math.pi)

    def polygon(points):
        rot = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
        pts = np.asarray(points, np.float64) @ rot.T * size + [cx, cy]
        cv2.fillPoly(mask, [np.round(pts).astype(np.int32)], 1)

    if cls == 1:
        cv2.circle(mask, center, max(2, int(round(size))), 1, -1)
    elif cls == 2:
        polygon([(-0.5, -0.5), (0.5, -0.5), (0.5, 0.5), (-0.5, 0.5)])
    elif cls == 3:
        polygon([(0, -0.6), (0.55, 0.4), (-0.55, 0.4)])
    elif cls == 4:
        arm = 0.17
        polygon([(-arm, -0.5), (arm, -0.5), (arm, -arm), (0.5, -arm), (0.5, arm), (arm, arm),
                 (arm, 0.5), (-arm, 0.5), (-arm, arm), (-0.5, arm), (-0.5, -arm),
                 (-arm, -arm)])
    else:
        outer = max(3, int(round(size)))
        cv2.circle(mask, center, outer, 1, -1)
        cv2.circle(mask, center, max(1, int(round(outer * 0.5))), 0, -1)
    return mask.astype(bool)


def generate_example(seed: int, split: str, index: int, height: int = 128,
                     width: int = 128) -> tuple[np.ndarray, np.ndarray]:
    """Returns (HxWx3 uint8 RGB image, HxW uint8 label) for one synthetic example."""
    rng = np.random.default_rng([seed, _SPLIT_IDS.get(split, 3), index])
    image = _background(rng, height, width)
    label = np.zeros((height, width), np.uint8)
    for _ in range(int(rng.integers(2, 7))):
        cls = int(rng.integers(1, len(CLASS_COLORS) + 1))
        mask = _shape_mask(rng, cls, height, width)
        color = np.array(CLASS_COLORS[cls], np.float64) + rng.uniform(-20, 20, size=3)
        shading = rng.normal(0, 6, size=(height, width, 1))
        image = np.where(mask[..., None], color[None, None, :] + shading, image)
        label[mask] = cls
    # VOC-style void band: pixels whose 3x3 neighbourhood holds two different classes.
    band = cv2.dilate(label, np.ones((3, 3), np.uint8)) != cv2.erode(label, np.ones((3, 3),
                                                                                np.uint8))
    label[band] = IGNORE_LABEL
    return np.clip(np.round(image), 0, 255).astype(np.uint8), label


def synthetic_samples(seed: int, split: str, start: int, count: int, height: int,
                      width: int) -> list[Sample]:
    """Samples `start` .. `start + count - 1` of `split` (a writer task function)."""
    samples = []
    for index in range(start, start + count):
        image, label = generate_example(seed, split, index, height, width)
        name = f"{split}_{index:06d}"
        samples.append(Sample(name, image, label, image_path=f"<synthetic {name}>"))
    return samples


@dataclasses.dataclass(frozen=True)
class SyntheticConfig:
    """Size and seed of the synthetic data set."""

    splits_to_sizes: dict[str, int] = dataclasses.field(
        default_factory=lambda: dict(SYNTHETIC_DEFAULT_SIZES))
    height: int = 128
    width: int = 128
    seed: int = 0


def synthetic_descriptor(config: SyntheticConfig | None = None) -> DatasetDescriptor:
    """The descriptor of a synthetic set with the given sizes."""
    config = config or SyntheticConfig()
    return DatasetDescriptor("synthetic", dict(config.splits_to_sizes),
                             num_classes=len(SYNTHETIC_CLASSES), ignore_label=IGNORE_LABEL,
                             class_names=SYNTHETIC_CLASSES, colormap="pascal")


def build_synthetic(output_dir: str, config: SyntheticConfig | None = None,
                    num_shards: int = 4, num_workers: int = 1, overwrite: bool = False,
                    image_format: str = "png", examples_per_task: int = 16) -> DatasetDescriptor:
    """Writes the synthetic set's records and dataset.json to `output_dir`."""
    config = config or SyntheticConfig()
    split_tasks = {}
    for split, size in config.splits_to_sizes.items():
        split_tasks[split] = [
            Task(synthetic_samples,
                 (config.seed, split, start, min(examples_per_task, size - start), config.height,
                  config.width),
                 count=min(examples_per_task, size - start))
            for start in range(0, size, examples_per_task)]
    return build_records(output_dir, synthetic_descriptor(config), split_tasks, num_shards,
                         num_workers=num_workers, image_format=image_format,
                         overwrite=overwrite)
