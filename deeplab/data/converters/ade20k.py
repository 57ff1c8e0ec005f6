"""ADE20K SceneParsing (ADEChallengeData2016): 150 classes + "other" (0), which is ignored.

Differences from the original: the file list is sorted rather than shuffled (records are
shuffled when read; a sorted list keeps re-runs identical), and ``image/filename`` holds the
basename without extension rather than the full globbed path.
"""

from __future__ import annotations

import glob
import os

from deeplab.data.converters.common import load_pair, missing_files_error, require_dir
from deeplab.data.descriptor import DatasetDescriptor, get_dataset
from deeplab.data.errors import DataError
from deeplab.data.writer import Task, build_records

NUM_SHARDS = 4


def ade20k_split_tasks(image_folder: str, label_folder: str) -> list[Task]:
    """Tasks for one split: every ``*.jpg`` of `image_folder` with ``label_folder/<name>.png``."""
    require_dir(image_folder, "image folder")
    require_dir(label_folder, "label folder")
    images = sorted(glob.glob(os.path.join(glob.escape(image_folder), "*.jpg")))
    if not images:
        raise DataError(f"no *.jpg images in {image_folder!r}")
    tasks, missing = [], []
    for image_path in images:
        name = os.path.splitext(os.path.basename(image_path))[0]
        label_path = os.path.join(label_folder, name + ".png")
        if not os.path.isfile(label_path):
            missing.append(name + ".png")
        tasks.append(Task(load_pair, (name, image_path, label_path)))
    if missing:
        raise missing_files_error("labels", missing, label_folder)
    return tasks


def convert_ade20k(train_image_folder: str | None, train_image_label_folder: str | None,
                   val_image_folder: str | None, val_image_label_folder: str | None,
                   output_dir: str, num_shards: int = NUM_SHARDS, num_workers: int = 1,
                   overwrite: bool = False, image_format: str = "png") -> DatasetDescriptor:
    """Converts ADEChallengeData2016 to records (splits ``train``, ``val``) + dataset.json.

    A split whose folders are None is skipped.
    """
    folders = {"train": (train_image_folder, train_image_label_folder),
               "val": (val_image_folder, val_image_label_folder)}
    tasks = {split: ade20k_split_tasks(images, labels)
             for split, (images, labels) in folders.items() if images and labels}
    if not tasks:
        raise DataError("give the image and label folders of at least one split")
    return build_records(output_dir, get_dataset("ade20k"), tasks, num_shards,
                         num_workers=num_workers, image_format=image_format, overwrite=overwrite)
