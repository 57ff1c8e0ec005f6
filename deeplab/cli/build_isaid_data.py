"""Converts iSAID to tiled TFRecords + dataset.json (16 classes from the colour-coded masks)."""


from absl import flags

from deeplab.cli.common import converter_options, define_converter_flags
from deeplab.cli.runner import run_binary
from deeplab.data.converters.isaid import NUM_SHARDS, convert_isaid

FLAGS = flags.FLAGS
flags.DEFINE_string("isaid_root", "./iSAID", "Folder holding train/, val/ (and test/).")
flags.DEFINE_list("splits", None, "Splits to build (default: those present).")
flags.DEFINE_integer("patch_size", 896, "Tile size in pixels.")
flags.DEFINE_integer("overlap", 384, "Overlap between neighbouring tiles in pixels.")
define_converter_flags("./tfrecord", NUM_SHARDS)


def main(argv):
    del argv
    convert_isaid(
        FLAGS.isaid_root, FLAGS.output_dir, splits=FLAGS.splits, patch_size=FLAGS.patch_size,
        overlap=FLAGS.overlap, **converter_options())


def run():
    """Entry point (the thin script, or a console script)."""
    run_binary("build_isaid_data", main, prefix="error: ")


if __name__ == "__main__":
    run()
