"""Class statistics of a split: labelled pixels per class, images holding each class, void.

Every converter counts them while it writes a split (from each label's histogram) and keeps
them in ``dataset.json`` under ``splits.<split>.statistics``; :func:`split_statistics`
counts them from existing records (ours or the original's). They feed class balancing
(``deeplab.training.class_balancing``), the warning for a split that one class dominates,
and ``dataset_stats``' table and chart.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from deeplab.analysis.tables import format_table
from deeplab.data import records
from deeplab.data.errors import DataError
from deeplab.data.progress import Progress

STATISTICS_KEY = "statistics"
# A split where one class holds more than this share of the labelled pixels gets a warning:
# a model can score well on it by predicting that class everywhere.
DOMINANT_SHARE = 0.90
HISTOGRAM_BINS = 256  # labels are 8-bit PNGs


def label_histogram(labels: np.ndarray) -> np.ndarray:
    """[256] int64 pixel counts of each value of an 8-bit label."""
    return np.bincount(np.asarray(labels, np.uint8).ravel(), minlength=HISTOGRAM_BINS)


@dataclasses.dataclass
class SplitStatistics:
    """Counts over a split's labels; void (the ignore label) is never a class's pixel.

    Attributes:
        class_pixels: labelled pixels per class.
        images_with_class: images holding at least one pixel of each class.
        pixels_of_images_with_class: labelled pixels of the images holding each class (the
            denominator of median-frequency balancing's class frequency).
        void_pixels: pixels with the ignore label.
        invalid_pixels: pixels with a value that is neither a class nor the ignore label
            (the converters refuse them; records built elsewhere may hold some).
        num_images: images counted.
    """

    class_pixels: list[int]
    images_with_class: list[int]
    pixels_of_images_with_class: list[int]
    void_pixels: int = 0
    invalid_pixels: int = 0
    num_images: int = 0

    @classmethod
    def empty(cls, num_classes: int) -> SplitStatistics:
        return cls([0] * num_classes, [0] * num_classes, [0] * num_classes)

    @property
    def num_classes(self) -> int:
        return len(self.class_pixels)

    @property
    def labelled_pixels(self) -> int:
        return int(sum(self.class_pixels))

    def add(self, histogram: np.ndarray, ignore_label: int) -> None:
        """Counts one image from its :func:`label_histogram`."""
        counts = np.asarray(histogram, np.int64)
        classes = counts[:self.num_classes].copy()
        void = int(counts[ignore_label]) if 0 <= ignore_label < len(counts) else 0
        if 0 <= ignore_label < self.num_classes:
            classes[ignore_label] = 0  # ADE20K: class 0 is the ignore label
        present = classes > 0
        labelled = int(classes.sum())
        self.class_pixels = (np.asarray(self.class_pixels, np.int64) + classes).tolist()
        self.images_with_class = (np.asarray(self.images_with_class, np.int64)
                                  + present).tolist()
        self.pixels_of_images_with_class = (
            np.asarray(self.pixels_of_images_with_class, np.int64) + present * labelled
        ).tolist()
        self.void_pixels += void
        self.invalid_pixels += int(counts.sum()) - labelled - void
        self.num_images += 1

    def shares(self) -> np.ndarray:
        """Each class's fraction of the labelled pixels (zeros when there are none)."""
        pixels = np.asarray(self.class_pixels, np.float64)
        total = pixels.sum()
        return pixels / total if total else pixels

    def void_fraction(self) -> float | None:
        """Void pixels over all pixels; None without pixels."""
        total = self.labelled_pixels + self.void_pixels + self.invalid_pixels
        return self.void_pixels / total if total else None

    def to_json(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, values: dict, source: str = "dataset.json") -> SplitStatistics:
        try:
            stats = cls(**{f.name: values[f.name] for f in dataclasses.fields(cls)})
        except (KeyError, TypeError) as e:
            raise DataError(f"{source}: the split statistics are incomplete ({e!r}); "
                            "recount them with python datasets/dataset_stats.py") from None
        lengths = {len(stats.class_pixels), len(stats.images_with_class),
                   len(stats.pixels_of_images_with_class)}
        if len(lengths) != 1:
            raise DataError(f"{source}: the split statistics have lists of different "
                            "lengths; recount them with python datasets/dataset_stats.py")
        return stats


def class_name(class_names: Sequence[str], index: int) -> str:
    return class_names[index] if index < len(class_names) else f"class {index}"


def dominance_warning(split: str, stats: SplitStatistics, class_names: Sequence[str],
                      threshold: float = DOMINANT_SHARE) -> str | None:
    """A warning (without a ``warning:`` prefix) when one class holds more than
    ``threshold`` of the labelled pixels."""
    shares = stats.shares()
    if not shares.size or not shares.any():
        return None
    top = int(np.argmax(shares))
    if shares[top] <= threshold:
        return None
    return (f"split {split!r}: {100 * shares[top]:.1f}% of the labelled pixels are "
            f"{class_name(class_names, top)!r}: a model can score well by predicting it "
            "everywhere and never learn the other classes; train with "
            "--class_balancing=median_frequency (deeplab-train) to weight the rare classes up")


def stored_statistics(dataset_dir: str, split: str) -> SplitStatistics | None:
    """The statistics ``dataset.json`` keeps for ``split``; None when it keeps none."""
    from deeplab.data.descriptor import DATASET_JSON, load_dataset_json

    path = os.path.join(dataset_dir, DATASET_JSON)
    if not os.path.isfile(path):
        return None
    values = load_dataset_json(path).get("splits", {}).get(split, {}).get(STATISTICS_KEY)
    return SplitStatistics.from_json(values, path) if values else None


def count_split(dataset_dir: str, split: str, num_classes: int, ignore_label: int,
                log: Callable[[str], None] | None = print) -> SplitStatistics:
    """Counts a split's statistics from its records (ours or the original's), decoding only
    the labels, in parallel, with progress lines to ``log``.

    Raises:
        DataError: the split has no records, or a record has no label.
    """
    import tensorflow as tf

    files = records.list_shards(dataset_dir, split)
    total = sum(records.check_record_framing(path) for path in files)
    features = {records.LABEL_ENCODED: tf.io.FixedLenFeature((), tf.string, default_value=""),
                records.IMAGE_FILENAME: tf.io.FixedLenFeature((), tf.string, default_value="")}

    def histogram(serialized):
        parsed = tf.io.parse_single_example(serialized, features)
        encoded = parsed[records.LABEL_ENCODED]
        counts = tf.cond(
            tf.strings.length(encoded) > 0,
            lambda: tf.math.bincount(
                tf.cast(tf.io.decode_image(encoded, channels=1, expand_animations=False),
                        tf.int32), minlength=HISTOGRAM_BINS, maxlength=HISTOGRAM_BINS,
                dtype=tf.int64),
            lambda: tf.fill([HISTOGRAM_BINS], tf.constant(-1, tf.int64)))
        return counts, parsed[records.IMAGE_FILENAME]

    dataset = (tf.data.TFRecordDataset(files)
               .map(histogram, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
               .prefetch(tf.data.AUTOTUNE))
    stats = SplitStatistics.empty(num_classes)
    progress = Progress(total, f"counting classes of {split}", interval=10.0, log=log,
                        unit="images")
    for counts, name in dataset.as_numpy_iterator():
        if counts[0] < 0:
            raise DataError(f"{dataset_dir}: split {split!r}, image {name.decode()!r} has no "
                            f"label ({records.LABEL_ENCODED!r} is empty): only labelled splits "
                            "have class statistics")
        stats.add(counts, ignore_label)
        progress.update()
    progress.close()
    return stats


def store_statistics(dataset_dir: str, descriptor, statistics: dict[str, SplitStatistics],
                     ) -> str:
    """Keeps ``statistics`` (split -> counts) in the records' ``dataset.json``, writing one
    from ``descriptor`` when the records have none (the original's); returns its path.

    Raises:
        OSError: the folder is not writable.
    """
    from deeplab.data.descriptor import (
        DATASET_JSON,
        descriptor_from_json_dict,
        load_dataset_json,
        write_dataset_json,
    )

    path = os.path.join(dataset_dir, DATASET_JSON)
    if os.path.isfile(path):  # what it says of the data set stays as it is
        descriptor = descriptor_from_json_dict(load_dataset_json(path), path)
    sizes = {split: stats.num_images for split, stats in statistics.items()}
    described = dataclasses.replace(descriptor, splits_to_sizes=sizes, unlabeled_splits=())
    return write_dataset_json(dataset_dir, described, {
        split: {STATISTICS_KEY: stats.to_json()} for split, stats in statistics.items()})


def statistics_table(statistics: Mapping[str, SplitStatistics],
                     class_names: Sequence[str]) -> str:
    """One row per class: per split, its labelled pixels, their share and the images
    holding it; then a line per split with its images, labelled and void pixels."""
    splits = list(statistics)
    headers = ["class"]
    for split in splits:
        headers += [f"{split} pixels", "share", "images"]
    count = max(stats.num_classes for stats in statistics.values())
    shares = {split: stats.shares() for split, stats in statistics.items()}
    rows = []
    for index in range(count):
        row = [class_name(class_names, index)]
        for split in splits:
            stats = statistics[split]
            row += [f"{stats.class_pixels[index]:,}", f"{100 * shares[split][index]:.2f}%",
                    stats.images_with_class[index]]
        rows.append(row)
    totals = [f"{split}: {stats.num_images} images, {stats.labelled_pixels:,} labelled "
              f"pixels, {stats.void_pixels:,} void ({100 * (stats.void_fraction() or 0):.1f}%)"
              for split, stats in statistics.items()]
    return "\n".join([format_table(headers, rows), *totals])


def save_statistics_chart(statistics: Mapping[str, SplitStatistics],
                          class_names: Sequence[str], path, title: str = "",
                          ) -> tuple[int, int]:
    """The class shares of every split as one PNG; returns its size in pixels."""
    from deeplab.analysis.class_figures import class_share_chart
    from deeplab.analysis.plotting import save_figure

    count = max(stats.num_classes for stats in statistics.values())
    names = [class_name(class_names, index) for index in range(count)]
    figure = class_share_chart({split: (stats.shares(), stats.images_with_class)
                                for split, stats in statistics.items()}, names, title)
    return save_figure(figure, path)
