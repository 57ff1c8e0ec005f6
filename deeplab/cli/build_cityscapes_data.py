"""Converts Cityscapes (leftImg8bit + gtFine) to TFRecords + dataset.json.

Uses *_gtFine_labelTrainIds.png, or converts *_gtFine_labelIds.png with the official
id -> trainId table when those are absent. Splits train_fine, val_fine, test_fine.
"""


from absl import flags

from deeplab.cli.runner import run_binary
from deeplab.data.converters.cityscapes import NUM_SHARDS, SPLIT_FOLDERS, convert_cityscapes
from deeplab.data.writer import default_num_workers

FLAGS = flags.FLAGS
flags.DEFINE_string("cityscapes_root", "./cityscapes", "Cityscapes root folder.")
flags.DEFINE_string("output_dir", "./tfrecord", "Where the records and dataset.json go.")
flags.DEFINE_list("splits", list(SPLIT_FOLDERS), "Splits to build.")
flags.DEFINE_integer("num_shards", NUM_SHARDS, "Shards per split.")
flags.DEFINE_integer("num_workers", default_num_workers(), "Encoding processes.")
flags.DEFINE_bool("overwrite", False, "Rebuild splits even when they are up to date.")


def main(argv):
    del argv
    convert_cityscapes(
        FLAGS.cityscapes_root, FLAGS.output_dir, splits=FLAGS.splits,
        num_shards=FLAGS.num_shards, num_workers=FLAGS.num_workers, overwrite=FLAGS.overwrite)


def run():
    """Entry point (the thin script, or a console script)."""
    run_binary("build_cityscapes_data", main, prefix="error: ")


if __name__ == "__main__":
    run()
