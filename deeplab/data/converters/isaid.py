"""iSAID (aerial images, 15 classes + background, colour-coded semantic masks), tiled.

Layout (the official archives extracted in place)::

    <root>/<split>/images/**/P0000.png
    <root>/<split>/Semantic_masks/**/P0000_instance_color_RGB.png

Each image is cut into `patch_size` tiles overlapping by `overlap` pixels (896 / 384 by default,
the common setting); the last row and column of tiles are shifted to end at the image border,
and an image smaller than a tile is kept whole (the input pipeline pads it). Tiles are named
``<image>_<y0>_<y1>_<x0>_<x1>``. Mask colours not in the table become the ignore label.
"""

from __future__ import annotations

import glob
import os

from PIL import Image

from deeplab.data import image_io
from deeplab.data.converters.common import missing_files_error, require_dir
from deeplab.data.descriptor import DatasetDescriptor
from deeplab.data.errors import DataError
from deeplab.data.writer import Sample, Task, build_records

NUM_SHARDS = 10
IGNORE_LABEL = 255
CLASS_NAMES = ("background", "ship", "storage_tank", "baseball_diamond", "tennis_court",
               "basketball_court", "ground_track_field", "bridge", "large_vehicle",
               "small_vehicle", "helicopter", "swimming_pool", "roundabout",
               "soccer_ball_field", "plane", "harbor")
# RGB colour of each class id in the iSAID semantic masks (iSAID devkit / mmsegmentation).
COLORS = ((0, 0, 0), (0, 0, 63), (0, 63, 63), (0, 63, 0), (0, 63, 127), (0, 63, 191),
          (0, 63, 255), (0, 127, 63), (0, 127, 127), (0, 0, 127), (0, 0, 191), (0, 0, 255),
          (0, 191, 127), (0, 127, 191), (0, 127, 255), (0, 100, 155))


def tile_windows(height: int, width: int, patch_size: int, overlap: int
                 ) -> list[tuple[int, int, int, int]]:
    """(y0, y1, x0, x1) windows covering the image; edge windows end at the border."""
    if overlap >= patch_size:
        raise DataError(f"overlap {overlap} must be smaller than patch_size {patch_size}")
    stride = patch_size - overlap

    def starts(size: int) -> list[int]:
        if size <= patch_size:
            return [0]
        return sorted({min(s, size - patch_size) for s in range(0, size, stride)})

    return [(y, min(y + patch_size, height), x, min(x + patch_size, width))
            for y in starts(height) for x in starts(width)]


def load_tiles(name: str, image_path: str, mask_path: str | None, patch_size: int,
               overlap: int) -> list[Sample]:
    """Reads one large image (and mask) and cuts it into tiles (a writer task function)."""
    image = image_io.read_image_array(image_path)
    label = None
    if mask_path is not None:
        label = image_io.read_index_mask(mask_path, image_io.stack_color_table(COLORS),
                                         unknown_color_label=IGNORE_LABEL)
        if label.shape != image.shape[:2]:
            raise DataError(f"size mismatch: image {image_path!r} is {image.shape[1]}x"
                            f"{image.shape[0]} but mask {mask_path!r} is {label.shape[1]}x"
                            f"{label.shape[0]} (WxH)")
    samples = []
    for y0, y1, x0, x1 in tile_windows(image.shape[0], image.shape[1], patch_size, overlap):
        samples.append(Sample(
            f"{name}_{y0}_{y1}_{x0}_{x1}", image[y0:y1, x0:x1].copy(),
            None if label is None else label[y0:y1, x0:x1].copy(), image_path, mask_path))
    return samples


def isaid_tasks(root: str, splits: list[str] | None = None, patch_size: int = 896,
                overlap: int = 384) -> dict[str, list[Task]]:
    """Tasks per split; each task is one source image and yields all its tiles."""
    require_dir(root, "iSAID root")
    splits = splits or [s for s in ("train", "val", "test")
                        if os.path.isdir(os.path.join(root, s))]
    tasks: dict[str, list[Task]] = {}
    for split in splits:
        image_dir = os.path.join(root, split, "images")
        images = sorted(p for p in glob.glob(os.path.join(glob.escape(image_dir), "**", "*.png"),
                                             recursive=True)
                        if "_instance_" not in os.path.basename(p))
        if not images:
            raise DataError(f"no *.png images under {image_dir!r} for split {split!r}")
        masks = {os.path.basename(p)[: -len("_instance_color_RGB.png")]: p
                 for p in glob.glob(os.path.join(glob.escape(root), split, "Semantic_masks",
                                                 "**", "*_instance_color_RGB.png"),
                                    recursive=True)}
        missing = [os.path.basename(p) for p in images
                   if os.path.splitext(os.path.basename(p))[0] not in masks]
        if masks and missing:
            raise missing_files_error("semantic masks (for images)", missing,
                                      os.path.join(root, split, "Semantic_masks"))
        split_tasks = []
        for image_path in images:
            name = os.path.splitext(os.path.basename(image_path))[0]
            try:
                # Header only: the size gives the tiles.
                with Image.open(image_path, formats=image_io.IMAGE_FORMATS) as im:
                    width, height = im.size
            except OSError as e:
                raise DataError(f"{image_path!r} is corrupt or not an image ({e})") from None
            count = len(tile_windows(height, width, patch_size, overlap))
            split_tasks.append(Task(load_tiles, (name, image_path, masks.get(name), patch_size,
                                                 overlap), count=count))
        tasks[split] = split_tasks
    return tasks


def convert_isaid(root: str, output_dir: str, splits: list[str] | None = None,
                  patch_size: int = 896, overlap: int = 384, num_shards: int = NUM_SHARDS,
                  num_workers: int = 1, overwrite: bool = False) -> DatasetDescriptor:
    """Converts iSAID to tiled records + dataset.json (16 classes, ignore 255)."""
    tasks = isaid_tasks(root, splits, patch_size, overlap)
    unlabeled = tuple(s for s, ts in tasks.items() if all(t.args[2] is None for t in ts))
    descriptor = DatasetDescriptor(
        "isaid", {s: sum(t.count for t in ts) for s, ts in tasks.items()},
        num_classes=len(CLASS_NAMES), ignore_label=IGNORE_LABEL, class_names=CLASS_NAMES,
        colormap="custom", colors=COLORS, unlabeled_splits=unlabeled)
    return build_records(output_dir, descriptor, tasks, num_shards, num_workers=num_workers,
                         image_format="png", overwrite=overwrite)
