"""Any folder of images with a folder of masks -> records + dataset.json.

Masks are matched to images by file stem (``a.jpg`` <-> ``a.png``). They may be single-channel
PNGs of class ids, palette PNGs (read as indices), or RGB colour masks with a colour table file
(see `deeplab.data.image_io.load_color_table`). Examples go to ``val`` when a stable hash of
their stem falls below `val_fraction`, so adding images never moves existing ones between splits.
"""

from __future__ import annotations

import hashlib
import os

from deeplab.data import image_io
from deeplab.data.converters.common import (
    IMAGE_EXTENSIONS,
    find_with_stem,
    load_pair,
    missing_files_error,
    require_dir,
)
from deeplab.data.descriptor import DatasetDescriptor
from deeplab.data.errors import DataError
from deeplab.data.writer import Task, build_records

NUM_SHARDS = 4


def _is_val(stem: str, val_fraction: float, seed: int) -> bool:
    digest = hashlib.sha1(f"{seed}:{stem}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < val_fraction


def image_folder_tasks(image_folder: str, mask_folder: str, val_fraction: float = 0.1,
                       seed: int = 0, color_table: dict | None = None,
                       unknown_color_label: int | None = None) -> dict[str, list[Task]]:
    """Tasks for splits ``train`` and ``val`` (``val`` omitted when `val_fraction` is 0)."""
    require_dir(image_folder, "image folder")
    require_dir(mask_folder, "mask folder")
    if not 0 <= val_fraction < 1:
        raise DataError(f"val_fraction must be in [0, 1), not {val_fraction}")
    images = sorted(f for f in os.listdir(image_folder)
                    if f.lower().endswith(IMAGE_EXTENSIONS) and not f.startswith("."))
    if not images:
        raise DataError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) in {image_folder!r}")
    table = sorted(color_table.items()) if color_table else None
    splits: dict[str, list[Task]] = {"train": [], "val": []}
    missing = []
    for name in images:
        stem = os.path.splitext(name)[0]
        mask = find_with_stem(mask_folder, stem, (".png", ".bmp", ".tif", ".tiff", ".gif"))
        if mask is None:
            missing.append(stem + ".png")
            continue
        split = "val" if _is_val(stem, val_fraction, seed) else "train"
        splits[split].append(Task(load_pair, (stem, os.path.join(image_folder, name), mask,
                                              table, unknown_color_label)))
    if missing:
        raise missing_files_error("masks", missing, mask_folder)
    if val_fraction == 0:
        del splits["val"]
    elif not splits["val"]:
        raise DataError(f"val_fraction={val_fraction} put none of the {len(images)} images in "
                        "val; raise it or set it to 0")
    return splits


def convert_image_folder(image_folder: str, mask_folder: str, output_dir: str,
                         num_classes: int | None = None, ignore_label: int = 255,
                         class_names: list[str] | None = None, color_table_path: str | None = None,
                         unknown_color_label: int | None = None, val_fraction: float = 0.1,
                         seed: int = 0, name: str = "custom", num_shards: int = NUM_SHARDS,
                         num_workers: int = 1, image_format: str = "png",
                         overwrite: bool = False) -> DatasetDescriptor:
    """Converts an image folder + mask folder to records + dataset.json.

    `num_classes` is required unless a colour table gives it (largest id + 1). Class names come
    from `class_names` or the colour table.
    """
    table, table_names, colors = None, [], None
    if color_table_path:
        table, table_names = image_io.load_color_table(color_table_path)
        if num_classes is None:
            num_classes = max(i for i in table.values() if i != ignore_label) + 1
        by_id = {i: c for c, i in table.items()}
        if all(i in by_id for i in range(num_classes)):
            colors = tuple(by_id[i] for i in range(num_classes))
        table_names = [n for i, n in enumerate(table_names) if i < num_classes]
    if num_classes is None:
        raise DataError("num_classes is required for masks of class ids (count the background; "
                        "the ignore label is not a class)")
    names = tuple(class_names or table_names or [f"class_{i}" for i in range(num_classes)])
    tasks = image_folder_tasks(image_folder, mask_folder, val_fraction, seed, table,
                               unknown_color_label)
    descriptor = DatasetDescriptor(name, {s: len(t) for s, t in tasks.items()}, num_classes,
                                   ignore_label, names,
                                   colormap="custom" if colors else "pascal", colors=colors)
    return build_records(output_dir, descriptor, tasks, num_shards, num_workers=num_workers,
                         image_format=image_format, overwrite=overwrite)
