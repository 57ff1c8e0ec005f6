"""Checks every binary makes on its flags."""

from __future__ import annotations

import os


def require(values, *names: str) -> None:
    """ValueError naming the first required flag that is missing."""
    for name in names:
        if not values[name].value:
            raise ValueError(f"--{name} is required.")


def dataset_from_flags(values):
    """(dataset name or path, descriptor) from --dataset, else --dataset_dir's dataset.json.

    Without either, the original's default ``pascal_voc_seg`` descriptor is used.
    """
    from deeplab.data.descriptor import get_dataset

    name = values.dataset
    if name is None:
        has_json = os.path.isfile(os.path.join(values.dataset_dir, "dataset.json"))
        name = values.dataset_dir if has_json else "pascal_voc_seg"
    return name, get_dataset(name)


def check_num_classes(model, descriptor, path) -> None:
    """A checkpoint's classes must be the data set's (else eval and vis run silently wrong)."""
    if model.config.num_classes != descriptor.num_classes:
        raise ValueError(
            f"{path} predicts {model.config.num_classes} classes but {descriptor.name} has "
            f"{descriptor.num_classes}: use the data set the model was trained for "
            "(--dataset / --dataset_dir)")
