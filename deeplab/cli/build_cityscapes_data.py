"""Converts Cityscapes (leftImg8bit + gtFine) to TFRecords + dataset.json.

Uses *_gtFine_labelTrainIds.png, or converts *_gtFine_labelIds.png with the official
id -> trainId table when those are absent. Splits train_fine, val_fine, test_fine.
"""


from absl import flags

from deeplab.cli.common import converter_options, define_converter_flags
from deeplab.cli.runner import run_binary
from deeplab.data.converters.cityscapes import NUM_SHARDS, SPLIT_FOLDERS, convert_cityscapes

FLAGS = flags.FLAGS
flags.DEFINE_string("cityscapes_root", "./cityscapes", "Cityscapes root folder.")
flags.DEFINE_list("splits", list(SPLIT_FOLDERS), "Splits to build.")
define_converter_flags("./tfrecord", NUM_SHARDS, image_format="png")


def main(argv):
    del argv
    convert_cityscapes(
        FLAGS.cityscapes_root, FLAGS.output_dir, splits=FLAGS.splits, **converter_options())


def run():
    """Entry point (the thin script, or a console script)."""
    run_binary("build_cityscapes_data", main, prefix="error: ")


if __name__ == "__main__":
    run()
