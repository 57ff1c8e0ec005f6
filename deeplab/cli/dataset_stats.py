r"""Class statistics of a data set's records (``deeplab-dataset-stats``).

    python datasets/dataset_stats.py --dataset_dir=workspace/datasets/voc/tfrecord

Counts, for every labelled split (or --splits), each class's labelled pixels (void
excluded) and the images holding it, from the records themselves: ours or the original
release's (give --dataset=pascal_voc_seg, cityscapes or ade20k for records without a
dataset.json). Prints a table, saves a bar chart of the class shares (--output, default
<dataset_dir>/class_statistics.png) and keeps the counts in dataset.json, where
``deeplab-train --class_balancing`` reads them (the converters keep them there too). A
split where one class holds more than 90% of the labelled pixels gets a warning.
"""

from __future__ import annotations

import os

from absl import flags

from deeplab.cli.common import define_dataset_flags
from deeplab.cli.runner import run_binary

define_dataset_flags()
flags.DEFINE_multi_string("splits", [], "Splits to count (e.g. train,val); default: every "
                          "labelled split with records in --dataset_dir.")
flags.DEFINE_string("output", None, "The bar chart (PNG); default: "
                    "<dataset_dir>/class_statistics.png.")
flags.DEFINE_boolean("store", True, "Keep the counts in --dataset_dir's dataset.json (one is "
                     "written for records that have none).")
FLAGS = flags.FLAGS


def main(argv):
    del argv
    from deeplab.cli.common import dataset_from_flags, require
    from deeplab.data.records import splits_present
    from deeplab.data.statistics import (
        count_split,
        dominance_warning,
        save_statistics_chart,
        statistics_table,
        store_statistics,
    )
    from deeplab.runs.atomic import unwritable_reason

    require(FLAGS, "dataset_dir")
    if not os.path.isdir(FLAGS.dataset_dir):
        raise ValueError(f"--dataset_dir {FLAGS.dataset_dir} is not a directory")
    _, descriptor = dataset_from_flags(FLAGS)
    splits = [s for v in FLAGS.splits for s in v.split(",") if s.strip()]
    if not splits:
        splits = [s for s in splits_present(FLAGS.dataset_dir) if descriptor.is_labeled(s)]
        if not splits:
            raise ValueError(f"no labelled split has records in {FLAGS.dataset_dir} (files "
                             "named <split>-00000-of-0000N.tfrecord); check --dataset_dir")
    output = FLAGS.output or os.path.join(FLAGS.dataset_dir, "class_statistics.png")
    for folder, flag in ((os.path.dirname(os.path.abspath(output)), "--output"),
                         (FLAGS.dataset_dir if FLAGS.store else None, "--dataset_dir")):
        reason = folder and unwritable_reason(folder)
        if reason:
            raise ValueError(f"cannot write to {folder} ({flag}): {reason}; give "
                             "--output=<a writable .png> and --nostore")
    statistics = {split: count_split(FLAGS.dataset_dir, split, descriptor.num_classes,
                                     descriptor.ignore_label) for split in splits}
    print(statistics_table(statistics, descriptor.class_names))
    for split, stats in statistics.items():
        if stats.invalid_pixels:
            print(f"warning: split {split!r}: {stats.invalid_pixels:,} pixels hold values that "
                  f"are neither a class (0..{descriptor.num_classes - 1}) nor the ignore label "
                  f"{descriptor.ignore_label}: check --dataset / --num_classes and the masks")
        warning = dominance_warning(split, stats, descriptor.class_names)
        if warning:
            print(f"warning: {warning}")
    size = save_statistics_chart(statistics, descriptor.class_names, output,
                                 f"{descriptor.name}: class shares of the labelled pixels")
    print(f"chart: {output} ({size[0]}x{size[1]})")
    if FLAGS.store:
        print(f"counts kept in {store_statistics(FLAGS.dataset_dir, descriptor, statistics)}")


def run():
    """Console-script entry point."""
    run_binary("deeplab-dataset-stats", main)


if __name__ == "__main__":
    run()
