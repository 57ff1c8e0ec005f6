"""Converts iSAID to tiled TFRecords + dataset.json (16 classes from the colour-coded masks)."""


from absl import flags

from deeplab.cli.runner import run_binary
from deeplab.data.converters.isaid import NUM_SHARDS, convert_isaid
from deeplab.data.writer import default_num_workers

FLAGS = flags.FLAGS
flags.DEFINE_string("isaid_root", "./iSAID", "Folder holding train/, val/ (and test/).")
flags.DEFINE_string("output_dir", "./tfrecord", "Where the records and dataset.json go.")
flags.DEFINE_list("splits", None, "Splits to build (default: those present).")
flags.DEFINE_integer("patch_size", 896, "Tile size in pixels.")
flags.DEFINE_integer("overlap", 384, "Overlap between neighbouring tiles in pixels.")
flags.DEFINE_integer("num_shards", NUM_SHARDS, "Shards per split.")
flags.DEFINE_integer("num_workers", default_num_workers(), "Encoding processes.")
flags.DEFINE_bool("overwrite", False, "Rebuild splits even when they are up to date.")


def main(argv):
    del argv
    convert_isaid(
        FLAGS.isaid_root, FLAGS.output_dir, splits=FLAGS.splits, patch_size=FLAGS.patch_size,
        overlap=FLAGS.overlap, num_shards=FLAGS.num_shards, num_workers=FLAGS.num_workers,
        overwrite=FLAGS.overwrite)


def run():
    """Entry point (the thin script, or a console script)."""
    run_binary("build_isaid_data", main, prefix="error: ")


if __name__ == "__main__":
    run()
