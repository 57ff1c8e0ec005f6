"""Class names and colours that travel with a model, so predictions are named right."""

from __future__ import annotations

import dataclasses
from pathlib import Path

# Beside a .tflite file: one class name a line (written by convert_to_tflite).
TFLITE_LABELS_SUFFIX = ".labels.txt"


@dataclasses.dataclass(frozen=True)
class ClassLabels:
    """One name per class id and the colormap to draw them with.

    Attributes:
        names: the class names, index = class id.
        colormap: a colormap name (``pascal``, ``cityscapes``, ``ade20k``, ...).
        source: where they came from, for the line that says so.
    """

    names: tuple[str, ...]
    colormap: str = "pascal"
    source: str = ""

    def to_json(self) -> dict:
        return {"class_names": list(self.names), "colormap": self.colormap}

    @classmethod
    def from_json(cls, values: dict, source: str = "") -> ClassLabels:
        return cls(tuple(values["class_names"]), values.get("colormap") or "pascal", source)

    @classmethod
    def of_dataset(cls, descriptor, source: str = "") -> ClassLabels:
        names = tuple(descriptor.class_names) or tuple(
            f"class {i}" for i in range(descriptor.num_classes))
        return cls(names, descriptor.colormap, source or descriptor.name)


def stored_labels(model_path: str | Path) -> ClassLabels | None:
    """The labels kept with a model, if any: in a training directory's or ``ckpt-N``'s
    ``config.json``, in ``x.weights.h5``'s ``x.config.json``, in a SavedModel export's
    ``assets/`` (the newest version of an export folder), or ``x.tflite``'s
    ``x.labels.txt`` (names only)."""
    path = Path(model_path)
    if path.suffix == ".tflite":
        names = path.with_name(path.stem + TFLITE_LABELS_SUFFIX)
        if names.is_file():
            return ClassLabels(tuple(names.read_text().splitlines()), "pascal", str(names))
        return None
    if path.is_dir():
        exports = sorted((p.parent.parent for p in path.glob("*/assets/*.config.json")),
                         key=lambda p: int(p.name) if p.name.isdigit() else -1)
        candidates = [path / "config.json", *path.glob("assets/*.config.json"),
                      *(p for e in exports[-1:] for p in e.glob("assets/*.config.json"))]
    elif path.name.endswith(".weights.h5"):
        candidates = [path.with_name(path.name[: -len(".weights.h5")] + ".config.json")]
    else:  # a ckpt-N prefix (or the original's model.ckpt-N spelling)
        candidates = [path.parent / "config.json"]
    from deeplab.runs.store import read_json

    for candidate in candidates:
        if candidate.is_file():
            values = read_json(candidate).get("labels") or {}
            if "class_names" in values:
                return ClassLabels.from_json(values, str(candidate))
    return None


def labels_to_keep(model_path: str | Path | None, num_classes: int,
                   dataset: str | None = None, dataset_flag: str = "--dataset",
                   ) -> ClassLabels | None:
    """The class names an export keeps with the model it writes (a SavedModel's assets, a
    TFLite labels file): ``dataset``'s (a registry name, ``dataset.json`` or a records
    folder), else those stored with the model at ``model_path``, else None. Either must
    name ``num_classes`` classes.

    Args:
        model_path: the model being exported (None: nothing stored to fall back on).
        num_classes: the model's class count.
        dataset: where the user said the names are.
        dataset_flag: the flag that gave ``dataset``, for the message.

    Raises:
        ValueError: the names are for another number of classes (saying whose).
    """
    from deeplab.data.descriptor import get_dataset
    from deeplab.runs.store import check_class_names

    if dataset:
        labels = ClassLabels.of_dataset(get_dataset(dataset), f"{dataset_flag} {dataset}")
        check_class_names(labels.names, num_classes, labels.source,
                          f"give the data set it was trained on, or leave {dataset_flag} "
                          "out to keep the names stored with the model")
        return labels
    stored = stored_labels(model_path) if model_path else None
    if stored is not None:
        check_class_names(stored.names, num_classes, stored.source,
                          "fix or remove its class names (one per class of the model)")
    return stored


def resolve_labels(model_path: str | Path, num_classes: int | None,
                   dataset: str | None = None) -> ClassLabels:
    """The labels to draw a model's predictions with.

    ``dataset`` (a registry name or ``dataset.json``) wins, and must have the model's class
    count; then the labels stored with the model; then a registered data set with the same
    number of classes (the source says it was chosen by count); else ``class 0`` ...

    Raises:
        ValueError: ``dataset`` has another number of classes than the model.
    """
    from deeplab.data.descriptor import get_dataset, registered_datasets

    if dataset:
        descriptor = get_dataset(dataset)
        if num_classes is not None and descriptor.num_classes != num_classes:
            raise ValueError(
                f"--dataset {dataset} has {descriptor.num_classes} classes, the model "
                f"{num_classes}: give the data set it was trained on, or leave --dataset out "
                "to use the names stored with the model")
        return ClassLabels.of_dataset(descriptor, f"--dataset {dataset}")
    stored = stored_labels(model_path)
    if stored is not None and (num_classes is None or len(stored.names) == num_classes):
        return stored
    # Names stored for another class count are not used, and the line says so.
    why = ("no names are stored with the model" if stored is None else
           f"the {len(stored.names)} names in {stored.source} are not for this "
           f"{num_classes}-class model")
    if num_classes is not None:
        for name in registered_datasets():
            descriptor = get_dataset(name)
            if descriptor.num_classes == num_classes and descriptor.class_names:
                return ClassLabels.of_dataset(
                    descriptor, f"{name}, chosen by its {num_classes} classes ({why}; "
                    "--dataset sets them)")
    count = num_classes or 256
    return ClassLabels(tuple(f"class {i}" for i in range(count)), "pascal",
                       f"class numbers ({why}; --dataset sets them)")
