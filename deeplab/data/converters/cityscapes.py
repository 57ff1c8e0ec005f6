"""Cityscapes (leftImg8bit + gtFine) with the 19 training classes.

Labels come from ``*_gtFine_labelTrainIds.png`` (made by cityscapesScripts), or, when those are
absent, from ``*_gtFine_labelIds.png`` through the official id -> trainId table below, so the
cityscapesScripts step is not needed. Splits ``train_fine``, ``val_fine``, ``test_fine``; a split
without label files (the public test set) is written without labels.
"""

from __future__ import annotations

import glob
import os

import numpy as np

from deeplab.data import image_io
from deeplab.data.converters.common import missing_files_error, require_dir
from deeplab.data.descriptor import DatasetDescriptor, get_dataset
from deeplab.data.errors import DataError
from deeplab.data.writer import Sample, Task, build_records

NUM_SHARDS = 10
SPLIT_FOLDERS = {"train_fine": "train", "val_fine": "val", "test_fine": "test"}

# cityscapesScripts labels.py: id -> trainId; ids not listed (0-6, 9, 10, 14-16, 18, 29, 30 and
# the license plate) are void (255).
ID_TO_TRAIN_ID = {7: 0, 8: 1, 11: 2, 12: 3, 13: 4, 17: 5, 19: 6, 20: 7, 21: 8, 22: 9, 23: 10,
                  24: 11, 25: 12, 26: 13, 27: 14, 28: 15, 31: 16, 32: 17, 33: 18}


def id_to_train_id_lut() -> np.ndarray:
    """A 256-entry lookup table from Cityscapes label ids to train ids."""
    lut = np.full(256, 255, np.uint8)
    for label_id, train_id in ID_TO_TRAIN_ID.items():
        lut[label_id] = train_id
    return lut


def load_cityscapes_pair(filename: str, image_path: str, label_path: str | None,
                         label_is_ids: bool) -> list[Sample]:
    """Reads an image and its trainId label, converting labelIds if needed (task function)."""
    label = None
    if label_path is not None:
        label = image_io.read_index_mask(label_path)
        if label_is_ids:
            label = id_to_train_id_lut()[label]
    return [Sample(filename, image_io.read_bytes(image_path), label, image_path, label_path)]


def cityscapes_tasks(cityscapes_root: str, splits: list[str] | None = None
                     ) -> dict[str, list[Task]]:
    """Tasks per split from the standard Cityscapes layout."""
    require_dir(cityscapes_root, "Cityscapes root")
    tasks: dict[str, list[Task]] = {}
    for split in splits or list(SPLIT_FOLDERS):
        if split not in SPLIT_FOLDERS:
            raise DataError(f"unknown Cityscapes split {split!r}; use {list(SPLIT_FOLDERS)}")
        folder = SPLIT_FOLDERS[split]
        image_dir = os.path.join(cityscapes_root, "leftImg8bit", folder)
        images = sorted(glob.glob(os.path.join(glob.escape(image_dir), "*",
                                               "*_leftImg8bit.png")))
        if not images:
            raise DataError(f"no *_leftImg8bit.png images in {image_dir!r}/<city>/ for split "
                            f"{split!r}")
        label_dir = os.path.join(cityscapes_root, "gtFine", folder)
        entries, missing = [], []
        for image_path in images:
            city = os.path.basename(os.path.dirname(image_path))
            base = os.path.basename(image_path)[: -len("_leftImg8bit.png")]
            prefix = os.path.join(label_dir, city, base + "_gtFine_")
            if os.path.isfile(prefix + "labelTrainIds.png"):
                entries.append((base, image_path, prefix + "labelTrainIds.png", False))
            elif os.path.isfile(prefix + "labelIds.png"):
                entries.append((base, image_path, prefix + "labelIds.png", True))
            else:
                entries.append((base, image_path, None, False))
                missing.append(prefix + "labelTrainIds.png")
        if missing and len(missing) != len(images):
            # The original raised when image and label counts differed; name the files.
            raise missing_files_error("labels", missing, label_dir)
        tasks[split] = [Task(load_cityscapes_pair, entry) for entry in entries]
    return tasks


def convert_cityscapes(cityscapes_root: str, output_dir: str, splits: list[str] | None = None,
                       num_shards: int = NUM_SHARDS, num_workers: int = 1,
                       overwrite: bool = False, image_format: str = "png") -> DatasetDescriptor:
    """Converts Cityscapes to records + dataset.json."""
    tasks = cityscapes_tasks(cityscapes_root, splits)
    unlabeled = tuple(s for s, ts in tasks.items() if all(t.args[2] is None for t in ts))
    base = get_dataset("cityscapes")
    descriptor = DatasetDescriptor(base.name, base.splits_to_sizes, base.num_classes,
                                   base.ignore_label, base.class_names, base.colormap,
                                   unlabeled_splits=unlabeled)
    return build_records(output_dir, descriptor, tasks, num_shards, num_workers=num_workers,
                         image_format=image_format, overwrite=overwrite)
