"""Retinal vessel data sets (DRIVE, STARE, CHASE_DB1, HRF) in their native layouts.

Labels: 0 background, 1 vessel; pixels outside the field-of-view mask become the ignore label
(255) where the data set ships such masks (DRIVE, HRF). Splits, as the common benchmarks (and
mmsegmentation's converters) use them, files sorted by name:

* DRIVE: ``training/`` (images 21-40) -> train, ``test/`` (01-20) -> test; test labels
  (``test/1st_manual``) are optional.
* STARE: 20 images ``im*.ppm[.gz]`` with the Hoover labels ``labels-ah`` (or ``labels-vk``):
  first 10 -> train, last 10 -> test.
* CHASE_DB1: 28 images ``Image_*.jpg`` with ``*_1stHO.png``: first 20 -> train, last 8 -> test.
* HRF: 45 images in 3 groups (``*_dr``, ``*_g``, ``*_h``), labels ``manual1/*.tif``, masks
  ``mask/*_mask.tif``: per group, first 5 -> train, last 10 -> test (15 / 30).
"""

from __future__ import annotations

import glob
import os

import numpy as np

from deeplab.data import image_io
from deeplab.data.converters.common import missing_files_error, require_dir
from deeplab.data.descriptor import DatasetDescriptor
from deeplab.data.errors import DataError
from deeplab.data.writer import Sample, Task, build_records

NUM_SHARDS = 1
IGNORE_LABEL = 255
DATASETS = ("drive", "stare", "chase_db1", "hrf")


def _binary(path: str) -> np.ndarray:
    """Reads a vessel or FOV mask (0/255, 0/1, any container, gzip ok) as a boolean array."""
    # Sized from its header before it is decoded, as every image the converters read.
    image = image_io.open_image(image_io.read_bytes(path), path)
    try:
        array = np.asarray(image.convert("L"))
    except (OSError, ValueError) as e:
        raise DataError(f"{path!r} is corrupt or not an image ({e})") from None
    return array >= (128 if array.max(initial=0) > 1 else 1)


def load_vessel_pair(filename: str, image_path: str, vessel_path: str | None,
                     fov_path: str | None) -> list[Sample]:
    """Reads an image, its vessel labels and optional FOV mask (a writer task function)."""
    label = None
    if vessel_path is not None:
        vessels = _binary(vessel_path)
        label = vessels.astype(np.uint8)
        if fov_path is not None:
            fov = _binary(fov_path)
            if fov.shape != label.shape:
                raise DataError(f"size mismatch: FOV mask {fov_path!r} is {fov.shape[::-1]} "
                                f"but labels {vessel_path!r} are {label.shape[::-1]} (WxH)")
            label[~fov] = IGNORE_LABEL
    return [Sample(filename, image_io.read_bytes(image_path), label, image_path, vessel_path)]


def _stem(path: str) -> str:
    name = os.path.basename(path)
    if name.endswith(".gz"):
        name = name[:-3]
    return os.path.splitext(name)[0]


def _glob(root: str, pattern: str) -> list[str]:
    return sorted(glob.glob(os.path.join(glob.escape(root), "**", pattern), recursive=True))


def _drive(root: str) -> dict[str, list[tuple]]:
    entries: dict[str, list[tuple]] = {}
    for folder, split in (("training", "train"), ("test", "test")):
        images = sorted(glob.glob(os.path.join(glob.escape(root), folder, "images", "*.tif")))
        if not images:
            continue
        rows = []
        for image_path in images:
            number = os.path.basename(image_path).split("_")[0]
            vessel = os.path.join(root, folder, "1st_manual", f"{number}_manual1.gif")
            fov = glob.glob(os.path.join(glob.escape(root), folder, "mask", f"{number}_*mask.gif"))
            rows.append((_stem(image_path), image_path,
                         vessel if os.path.isfile(vessel) else None, fov[0] if fov else None))
        entries[split] = rows
    return entries


def _stare(root: str, annotator: str = "ah") -> dict[str, list[tuple]]:
    images = [p for p in _glob(root, "im*.ppm*") if ".ah." not in p and ".vk." not in p]
    rows = []
    for image_path in images:
        stem = _stem(image_path)
        labels = _glob(root, f"{stem}.{annotator}.ppm*")
        rows.append((stem, image_path, labels[0] if labels else None, None))
    return {"train": rows[:10], "test": rows[10:]}


def _chase(root: str) -> dict[str, list[tuple]]:
    rows = []
    for image_path in _glob(root, "Image_*.jpg"):
        stem = _stem(image_path)
        label = os.path.join(os.path.dirname(image_path), f"{stem}_1stHO.png")
        rows.append((stem, image_path, label if os.path.isfile(label) else None, None))
    return {"train": rows[:20], "test": rows[20:]}


def _hrf(root: str) -> dict[str, list[tuple]]:
    images = sorted(p for ext in ("jpg", "JPG") for p in glob.glob(
        os.path.join(glob.escape(root), "images", f"*.{ext}")))
    groups: dict[str, list[tuple]] = {}
    for image_path in images:
        stem = _stem(image_path)
        label = os.path.join(root, "manual1", f"{stem}.tif")
        fov = os.path.join(root, "mask", f"{stem}_mask.tif")
        groups.setdefault(stem.split("_")[-1], []).append(
            (stem, image_path, label if os.path.isfile(label) else None,
             fov if os.path.isfile(fov) else None))
    return {"train": [r for g in sorted(groups) for r in groups[g][:5]],
            "test": [r for g in sorted(groups) for r in groups[g][5:]]}


def retinal_tasks(dataset: str, root: str, use_fov_mask: bool = True,
                  stare_annotator: str = "ah") -> dict[str, list[Task]]:
    """Tasks per split for one of `DATASETS` found under `root`."""
    require_dir(root, f"{dataset} root")
    if dataset == "drive":
        entries = _drive(root)
    elif dataset == "stare":
        entries = _stare(root, stare_annotator)
    elif dataset == "chase_db1":
        entries = _chase(root)
    elif dataset == "hrf":
        entries = _hrf(root)
    else:
        raise DataError(f"unknown retinal data set {dataset!r}; use one of {DATASETS}")
    entries = {split: rows for split, rows in entries.items() if rows}
    if not entries:
        raise DataError(f"no {dataset} images found under {root!r}; see the layout in "
                        "deeplab/data/converters/retinal.py")
    tasks = {}
    for split, rows in entries.items():
        missing = [row[1] for row in rows if row[2] is None]
        if missing and len(missing) != len(rows):
            raise missing_files_error(f"vessel labels (for images {split})", missing, root)
        tasks[split] = [Task(load_vessel_pair, (name, image, vessel, fov if use_fov_mask else None))
                        for name, image, vessel, fov in rows]
    return tasks


def convert_retinal(dataset: str, root: str, output_dir: str, use_fov_mask: bool = True,
                    stare_annotator: str = "ah", num_shards: int = NUM_SHARDS,
                    num_workers: int = 1, overwrite: bool = False) -> DatasetDescriptor:
    """Converts a retinal vessel data set to records + dataset.json (2 classes, ignore 255)."""
    tasks = retinal_tasks(dataset, root, use_fov_mask, stare_annotator)
    unlabeled = tuple(s for s, ts in tasks.items() if all(t.args[2] is None for t in ts))
    descriptor = DatasetDescriptor(dataset, {s: len(t) for s, t in tasks.items()}, num_classes=2,
                                   ignore_label=IGNORE_LABEL,
                                   class_names=("background", "vessel"), colormap="pascal",
                                   unlabeled_splits=unlabeled)
    return build_records(output_dir, descriptor, tasks, num_shards, num_workers=num_workers,
                         image_format="png", overwrite=overwrite)
