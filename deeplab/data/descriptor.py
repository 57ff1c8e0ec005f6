"""Dataset descriptors: a registry of the built-in data sets, and `dataset.json` files.

The original hard-coded its descriptors in `data_generator.py`, so adding a data set meant
editing source (its most asked question). Here every converter writes a `dataset.json` beside
the records, and `get_dataset` accepts a registry name, a `dataset.json` path or a directory
holding one.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping, Sequence
from typing import Any

from deeplab.data.errors import DataError
from deeplab.runs.atomic import write_text

DATASET_JSON = "dataset.json"
_FORMAT = "deeplab-tfrecord"
_FORMAT_VERSION = 1


@dataclasses.dataclass(frozen=True)
class DatasetDescriptor:
    """What the pipeline and the binaries need to know about a data set.

    Attributes:
      name: registry name, e.g. ``pascal_voc_seg``.
      splits_to_sizes: number of examples per split. As in the original this is informational:
        the records present decide what is read.
      num_classes: number of classes, including background; the ignore label is not a class.
      ignore_label: label value that gets no loss and no metric.
      class_names: one name per class id.
      colormap: colormap name for visualisation (``pascal``, ``cityscapes``, ``ade20k``,
        ``mapillary_vistas``), or
        ``custom`` when `colors` is given.
      colors: optional RGB colour per class id (data sets with their own colour table).
      unlabeled_splits: splits whose records hold no labels (e.g. Cityscapes ``test_fine``).
    """

    name: str
    splits_to_sizes: Mapping[str, int]
    num_classes: int
    ignore_label: int
    class_names: Sequence[str] = ()
    colormap: str = "pascal"
    colors: Sequence[Sequence[int]] | None = None
    unlabeled_splits: Sequence[str] = ()

    def __post_init__(self) -> None:
        if self.num_classes < 1:
            raise DataError(f"dataset {self.name!r}: num_classes must be >= 1")
        if self.class_names and len(self.class_names) != self.num_classes:
            raise DataError(
                f"dataset {self.name!r}: {len(self.class_names)} class names given for "
                f"num_classes={self.num_classes}"
            )
        if 0 <= self.ignore_label < self.num_classes and self.ignore_label != 0:
            # ADE20K legitimately ignores class 0; any other overlap is a configuration error.
            raise DataError(
                f"dataset {self.name!r}: ignore_label {self.ignore_label} is a class id "
                f"(num_classes={self.num_classes}); use 255 for void pixels"
            )

    def is_labeled(self, split: str) -> bool:
        """Whether the records of `split` carry labels."""
        return split not in self.unlabeled_splits

    def to_json_dict(self) -> dict[str, Any]:
        """The descriptor as a JSON-serialisable dict (without record bookkeeping)."""
        return {
            "name": self.name,
            "num_classes": self.num_classes,
            "ignore_label": self.ignore_label,
            "class_names": list(self.class_names),
            "colormap": self.colormap,
            "colors": [list(c) for c in self.colors] if self.colors is not None else None,
            "splits": {
                split: {"num_examples": size, "labeled": self.is_labeled(split)}
                for split, size in self.splits_to_sizes.items()
            },
        }


_VOC_CLASSES = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair",
    "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa",
    "train", "tvmonitor",
)
_CITYSCAPES_CLASSES = (
    "road", "sidewalk", "building", "wall", "fence", "pole", "traffic light", "traffic sign",
    "vegetation", "terrain", "sky", "person", "rider", "car", "truck", "bus", "train",
    "motorcycle", "bicycle",
)
# ADE20K SceneParsing (objectInfo150 short names); id 0 is "other", the ignore label.
_ADE20K_CLASSES = ("other",) + tuple(
    "wall building sky floor tree ceiling road bed windowpane grass cabinet sidewalk person earth "
    "door table mountain plant curtain chair car water painting sofa shelf house sea mirror rug "
    "field armchair seat fence desk rock wardrobe lamp bathtub railing cushion base box column "
    "signboard chest_of_drawers counter sand sink skyscraper fireplace refrigerator grandstand "
    "path stairs runway case pool_table pillow screen_door stairway river bridge bookcase blind "
    "coffee_table toilet flower book hill bench countertop stove palm kitchen_island computer "
    "swivel_chair boat bar arcade_machine hovel bus towel light truck tower chandelier awning "
    "streetlight booth television_receiver airplane dirt_track apparel pole land bannister "
    "escalator ottoman bottle buffet poster stage van ship fountain conveyer_belt canopy washer "
    "plaything swimming_pool stool barrel basket waterfall tent bag minibike cradle oven ball "
    "food step tank trade_name microwave pot animal bicycle lake dishwasher screen blanket "
    "sculpture hood sconce vase traffic_light tray ashcan fan pier crt_screen plate monitor "
    "bulletin_board shower radiator glass clock flag".split()
)
# Multi-word names are written with "_" above only to split on spaces.
_ADE20K_CLASSES = tuple(n.replace("_", " ") for n in _ADE20K_CLASSES)

SYNTHETIC_CLASSES = ("background", "disc", "square", "triangle", "cross", "ring")
SYNTHETIC_DEFAULT_SIZES = {"train": 400, "val": 50}

_REGISTRY: dict[str, DatasetDescriptor] = {}


def register_dataset(descriptor: DatasetDescriptor, overwrite: bool = False) -> None:
    """Adds a descriptor to the registry (for code that prefers names to `dataset.json` paths)."""
    if descriptor.name in _REGISTRY and not overwrite:
        raise DataError(f"dataset {descriptor.name!r} is already registered")
    _REGISTRY[descriptor.name] = descriptor


def registered_datasets() -> list[str]:
    """Names of the registered data sets, sorted."""
    return sorted(_REGISTRY)


register_dataset(DatasetDescriptor(
    "pascal_voc_seg", {"train": 1464, "train_aug": 10582, "trainval": 2913, "val": 1449},
    num_classes=21, ignore_label=255, class_names=_VOC_CLASSES, colormap="pascal"))
register_dataset(DatasetDescriptor(
    "cityscapes", {"train_fine": 2975, "val_fine": 500, "test_fine": 1525},
    num_classes=19, ignore_label=255, class_names=_CITYSCAPES_CLASSES, colormap="cityscapes"))
register_dataset(DatasetDescriptor(
    "ade20k", {"train": 20210, "val": 2000},
    num_classes=151, ignore_label=0, class_names=_ADE20K_CLASSES, colormap="ade20k"))
register_dataset(DatasetDescriptor(
    "synthetic", dict(SYNTHETIC_DEFAULT_SIZES),
    num_classes=len(SYNTHETIC_CLASSES), ignore_label=255, class_names=SYNTHETIC_CLASSES,
    colormap="pascal"))


def descriptor_from_json_dict(data: Mapping[str, Any], source: str = "<dict>") -> DatasetDescriptor:
    """Builds a descriptor from the content of a `dataset.json`."""
    try:
        splits = data.get("splits", {})
        return DatasetDescriptor(
            name=str(data["name"]),
            splits_to_sizes={s: int(v["num_examples"]) for s, v in splits.items()},
            num_classes=int(data["num_classes"]),
            ignore_label=int(data["ignore_label"]),
            class_names=tuple(data.get("class_names") or ()),
            colormap=str(data.get("colormap") or "pascal"),
            colors=tuple(tuple(c) for c in data["colors"]) if data.get("colors") else None,
            unlabeled_splits=tuple(s for s, v in splits.items() if not v.get("labeled", True)),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise DataError(f"{source} is not a valid dataset description ({e!r})") from None


def load_dataset_json(path: str) -> dict[str, Any]:
    """Reads a `dataset.json` (or the one inside directory `path`) as a dict."""
    if os.path.isdir(path):
        path = os.path.join(path, DATASET_JSON)
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        raise DataError(f"{path!r} does not exist") from None
    except json.JSONDecodeError as e:
        raise DataError(f"{path!r} is not valid JSON: {e}") from None


def get_dataset(name_or_path: str) -> DatasetDescriptor:
    """Returns the descriptor for a registry name, a `dataset.json` path, or a records directory.

    Raises:
      DataError: when neither a registered name nor a readable `dataset.json` is given.
    """
    if name_or_path in _REGISTRY:
        return _REGISTRY[name_or_path]
    if os.path.isfile(name_or_path) or os.path.isfile(
            os.path.join(name_or_path, DATASET_JSON)):
        data = load_dataset_json(name_or_path)
        return descriptor_from_json_dict(data, source=name_or_path)
    raise DataError(
        f"unknown dataset {name_or_path!r}: not one of {registered_datasets()} and not a "
        f"dataset.json file or a directory holding one"
    )


def write_dataset_json(
    output_dir: str,
    descriptor: DatasetDescriptor,
    split_records: Mapping[str, Mapping[str, Any]] | None = None,
) -> str:
    """Writes (atomically) `output_dir/dataset.json` and returns its path.

    Args:
      output_dir: the records directory.
      descriptor: what to describe. Splits already listed in an existing file but absent from
        `descriptor` are kept, so converting one split at a time accumulates.
      split_records: per split, extra bookkeeping (num_shards, fingerprint) to store.
    """
    path = os.path.join(output_dir, DATASET_JSON)
    data = descriptor.to_json_dict()
    splits = load_dataset_json(path).get("splits", {}) if os.path.exists(path) else {}
    for split, info in data["splits"].items():  # Keeps the order splits were first written.
        splits[split] = {**splits.get(split, {}), **info}
    for split, extra in (split_records or {}).items():
        splits.setdefault(split, {}).update(extra)
    data["splits"] = splits
    data["format"] = _FORMAT
    data["format_version"] = _FORMAT_VERSION
    write_text(path, json.dumps(data, indent=2, sort_keys=False) + "\n")
    return path


