"""``--class_balancing``: loss weights per class from the training split's class statistics.

A split dominated by one class (background) lets a model reach a low loss by predicting it
everywhere: the most reported failure on custom data sets. Weighting each class's pixels
against its frequency makes the rare classes count.

* ``median_frequency`` (Eigen & Fergus, 2015; SegNet): ``w_c = median(f) / f_c`` with
  ``f_c`` = class c's pixels / the labelled pixels of the images holding c, the median
  taken over the classes present; the median class gets 1.
* ``inverse_frequency``: ``w_c = 1 / (K * p_c)`` with ``p_c`` = class c's share of all
  labelled pixels and K the classes present; the weights average 1 over the pixels.

Classes absent from the split get 0 (they have no pixel to weight) and are named.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from deeplab.data.statistics import SplitStatistics, class_name
from deeplab.training.train_config import CLASS_BALANCING


def balancing_weights(stats: SplitStatistics, method: str) -> np.ndarray:
    """[C] float64 loss weights of ``method`` (see the module); 0 for absent classes.

    Raises:
        ValueError: an unknown method, or a split without labelled pixels.
    """
    if method not in CLASS_BALANCING:
        raise ValueError(f"--class_balancing must be one of {CLASS_BALANCING}, got "
                         f"{method!r}")
    pixels = np.asarray(stats.class_pixels, np.float64)
    present = pixels > 0
    if not present.any():
        raise ValueError("--class_balancing: the training split has no labelled pixels")
    weights = np.zeros_like(pixels)
    if method == "median_frequency":
        frequency = pixels[present] / np.asarray(stats.pixels_of_images_with_class,
                                                  np.float64)[present]
        weights[present] = np.median(frequency) / frequency
    else:
        share = pixels[present] / pixels.sum()
        weights[present] = 1.0 / (present.sum() * share)
    return weights


def weights_table(stats: SplitStatistics, weights: np.ndarray,
                  class_names: Sequence[str]) -> str:
    """The weights with each class's pixel share, one class a line."""
    shares = stats.shares()
    return "\n".join(f"  {class_name(class_names, c):<24} {100 * shares[c]:7.3f}% of pixels  "
                     f"weight {weights[c]:.4g}" for c in range(len(weights)))


def resolve_class_balancing(config, descriptor, log: Callable[[str], None] = print,
                            store: bool = True) -> tuple[float, ...] | None:
    """The loss weights ``config.class_balancing`` asks for, from the training split's
    statistics (``dataset.json``'s, else counted from the records and, with ``store``, kept
    there); None when there is nothing to compute. Prints the weights it uses.

    ``--label_weights`` given by hand win: then this says so and returns None.

    Args:
        config: a :class:`~deeplab.training.train_config.TrainConfig`.
        descriptor: the data set's descriptor (class names, ignore label).
        log: where the lines go.
        store: keep counted statistics in ``dataset.json`` (the chief's job).
    """
    from deeplab.data.statistics import count_split, store_statistics, stored_statistics
    from deeplab.runs.atomic import unwritable_reason

    method = config.class_balancing
    if not method:
        return None
    if config.label_weights != 1.0:
        log(f"--label_weights given: using them, not --class_balancing={method}")
        return None
    split = config.train_split
    stats = stored_statistics(config.dataset_dir, split)
    if stats is None or stats.num_classes != descriptor.num_classes:
        log(f"--class_balancing: counting the classes of split {split!r} (once; "
            "python datasets/dataset_stats.py keeps them in dataset.json)")
        stats = count_split(config.dataset_dir, split, descriptor.num_classes,
                            descriptor.ignore_label, log)
        if store and not unwritable_reason(config.dataset_dir):
            path = store_statistics(config.dataset_dir, descriptor, {split: stats})
            log(f"kept the counts in {path}")
    weights = balancing_weights(stats, method)
    log(f"--class_balancing={method}: loss weights from the classes of split {split!r}:\n"
        f"{weights_table(stats, weights, descriptor.class_names)}")
    absent = [class_name(descriptor.class_names, c) for c in np.flatnonzero(weights == 0)
              if c != descriptor.ignore_label]
    if absent:
        log(f"weight 0 for the classes with no pixel in split {split!r}: {', '.join(absent)}")
    return tuple(float(w) for w in weights)
