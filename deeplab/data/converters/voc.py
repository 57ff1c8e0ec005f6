"""PASCAL VOC 2012 (VOCdevkit layout), plus the SBD augmented set (`train_aug`, 10,582 images).

Labels: the SegmentationClass palette PNGs are read as class indices directly, so the original's
`remove_gt_colormap.py` step is optional (SegmentationClassRaw works too). `train_aug` takes its
labels, per image, from a SegmentationClassAug folder if given, else the VOC label if the image
has one, else SBD's ``cls/<name>.mat`` (read with scipy). Its list is ``train_aug.txt`` in the
list folder if present, else (VOC train + SBD train + SBD val, or all SegmentationClassAug
names) minus VOC val, which gives the usual 10,582 images.
"""

from __future__ import annotations

import glob
import os

import numpy as np

from deeplab.data import image_io
from deeplab.data.converters.common import load_pair, read_list, require_dir
from deeplab.data.descriptor import DatasetDescriptor, get_dataset
from deeplab.data.errors import DataError
from deeplab.data.progress import Progress
from deeplab.data.writer import Sample, Task, build_records
from deeplab.runs.atomic import write_bytes

NUM_SHARDS = 4


def read_sbd_mat(path: str) -> np.ndarray:
    """Reads SBD's ``GTcls.Segmentation`` class-id array from a ``cls/*.mat`` file."""
    try:
        import scipy.io
    except ImportError:
        raise DataError(
            f"reading SBD label {path!r} needs scipy (pip install scipy); alternatively pass a "
            "folder of SegmentationClassAug PNGs (--segmentation_class_aug_folder)") from None
    try:
        mat = scipy.io.loadmat(path, squeeze_me=True, struct_as_record=False)
        return np.asarray(mat["GTcls"].Segmentation, dtype=np.uint8)
    except (OSError, ValueError, KeyError, AttributeError, TypeError) as e:
        raise DataError(f"{path!r} is not a readable SBD cls .mat file ({e})") from None


def load_sbd_pair(filename: str, image_path: str, mat_path: str) -> list[Sample]:
    """Reads a VOC image and its SBD .mat label (a writer task function)."""
    return [Sample(filename, image_io.read_bytes(image_path), read_sbd_mat(mat_path),
                   image_path, mat_path)]


def _train_aug_names(list_folder: str, sbd_folder: str | None, aug_folder: str | None,
                     keep_duplicates: bool = False) -> list[str]:
    listed = os.path.join(list_folder, "train_aug.txt")
    if os.path.isfile(listed):
        return read_list(listed, keep_duplicates)
    val = set(read_list(os.path.join(list_folder, "val.txt")))
    if aug_folder:
        pool = {os.path.splitext(os.path.basename(p))[0]
                for p in glob.glob(os.path.join(glob.escape(aug_folder), "*.png"))}
    else:
        pool = set(read_list(os.path.join(list_folder, "train.txt")))
        for name in ("train.txt", "val.txt"):
            pool |= set(read_list(os.path.join(sbd_folder, name)))
    return sorted(pool - val)


def voc_tasks(image_folder: str, semantic_segmentation_folder: str, list_folder: str,
              splits: list[str] | None = None, sbd_folder: str | None = None,
              segmentation_class_aug_folder: str | None = None,
              image_extension: str = ".jpg", keep_duplicates: bool = False
              ) -> dict[str, list[Task]]:
    """Tasks per split: every ``*.txt`` of `list_folder` (or `splits`), plus ``train_aug``.

    A name listed twice in a split is written once unless `keep_duplicates` (see
    :func:`deeplab.data.converters.common.read_list`).

    Raises:
      DataError: for missing folders, lists, images or labels.
    """
    require_dir(image_folder, "image folder")
    require_dir(list_folder, "list folder")
    if splits is None:
        splits = sorted(os.path.splitext(os.path.basename(p))[0]
                        for p in glob.glob(os.path.join(glob.escape(list_folder), "*.txt")))
        if not splits:
            raise DataError(f"no *.txt split lists in {list_folder!r} (expected train.txt, "
                            "val.txt, trainval.txt from ImageSets/Segmentation)")
        if (sbd_folder or segmentation_class_aug_folder) and "train_aug" not in splits:
            splits.append("train_aug")
    tasks: dict[str, list[Task]] = {}
    for split in splits:
        if split == "train_aug" and not os.path.isfile(os.path.join(list_folder,
                                                                    "train_aug.txt")):
            if not (sbd_folder or segmentation_class_aug_folder):
                raise DataError("train_aug needs --sbd_folder (SBD's dataset/ folder with cls/) "
                                "or --segmentation_class_aug_folder")
            names = _train_aug_names(list_folder, sbd_folder, segmentation_class_aug_folder,
                                     keep_duplicates)
        else:
            names = read_list(os.path.join(list_folder, f"{split}.txt"), keep_duplicates)
        split_tasks = []
        for name in names:
            image_path = os.path.join(image_folder, name + image_extension)
            if not os.path.isfile(image_path):
                raise DataError(f"image {image_path!r} listed in split {split!r} is missing")
            candidates = []
            if split == "train_aug" and segmentation_class_aug_folder:
                candidates.append(os.path.join(segmentation_class_aug_folder, name + ".png"))
            candidates.append(os.path.join(semantic_segmentation_folder, name + ".png"))
            label_path = next((c for c in candidates if os.path.isfile(c)), None)
            if label_path is not None:
                split_tasks.append(Task(load_pair, (name, image_path, label_path)))
                continue
            mat_path = os.path.join(sbd_folder, "cls", name + ".mat") if sbd_folder else None
            if split == "train_aug" and mat_path and os.path.isfile(mat_path):
                split_tasks.append(Task(load_sbd_pair, (name, image_path, mat_path)))
                continue
            raise DataError(f"no label for {name!r} (split {split!r}): looked for "
                            f"{candidates + ([mat_path] if mat_path else [])}")
        tasks[split] = split_tasks
    return tasks


def convert_voc2012(image_folder: str, semantic_segmentation_folder: str, list_folder: str,
                    output_dir: str, splits: list[str] | None = None,
                    sbd_folder: str | None = None,
                    segmentation_class_aug_folder: str | None = None,
                    num_shards: int = NUM_SHARDS, num_workers: int = 1,
                    image_format: str = "jpg", overwrite: bool = False,
                    keep_duplicates: bool = False) -> DatasetDescriptor:
    """Converts VOCdevkit/VOC2012 (and optionally SBD) to records + dataset.json."""
    tasks = voc_tasks(image_folder, semantic_segmentation_folder, list_folder, splits,
                      sbd_folder, segmentation_class_aug_folder,
                      keep_duplicates=keep_duplicates)
    return build_records(output_dir, get_dataset("pascal_voc_seg"), tasks, num_shards,
                         num_workers=num_workers, image_format=image_format, overwrite=overwrite)


def remove_gt_colormap(original_gt_folder: str, output_dir: str,
                       segmentation_format: str = "png") -> int:
    """The original's `remove_gt_colormap.py`: palette PNGs -> single-channel class-id PNGs.

    Each output is written to a temporary name and renamed. Returns the number of files.
    """
    require_dir(original_gt_folder, "ground-truth folder")
    paths = sorted(glob.glob(os.path.join(glob.escape(original_gt_folder),
                                          f"*.{segmentation_format}")))
    if not paths:
        raise DataError(f"no *.{segmentation_format} files in {original_gt_folder!r}")
    os.makedirs(output_dir, exist_ok=True)
    progress = Progress(len(paths), "remove_gt_colormap", unit="files")
    for path in paths:
        label = image_io.read_index_mask(path)
        final = os.path.join(output_dir, os.path.splitext(os.path.basename(path))[0] + ".png")
        write_bytes(final, image_io.encode_png(label))
        progress.update()
    progress.close()
    return len(paths)
