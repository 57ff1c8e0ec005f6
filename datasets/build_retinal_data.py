"""Converts a retinal vessel data set (DRIVE, STARE, CHASE_DB1, HRF) to TFRecords + dataset.json.

Labels: 0 background, 1 vessel, 255 outside the field of view (DRIVE, HRF masks). The train/test
splits are documented in deeplab/data/converters/retinal.py.
"""

import sys

from absl import app, flags

from deeplab.data.cli import default_num_workers, run_converter
from deeplab.data.converters.retinal import DATASETS, NUM_SHARDS, convert_retinal

FLAGS = flags.FLAGS
flags.DEFINE_enum("dataset", None, list(DATASETS), "Which data set.")
flags.DEFINE_string("dataset_root", None, "The data set's extracted folder.")
flags.DEFINE_string("output_dir", "./tfrecord", "Where the records and dataset.json go.")
flags.DEFINE_bool("use_fov_mask", True, "Label pixels outside the field of view as ignore.")
flags.DEFINE_enum("stare_annotator", "ah", ["ah", "vk"], "STARE labels: Hoover (ah) or vk.")
flags.DEFINE_integer("num_shards", NUM_SHARDS, "Shards per split.")
flags.DEFINE_integer("num_workers", default_num_workers(), "Encoding processes.")
flags.DEFINE_bool("overwrite", False, "Rebuild splits even when they are up to date.")
flags.mark_flags_as_required(["dataset", "dataset_root"])


def main(argv):
    del argv
    return run_converter(lambda: convert_retinal(
        FLAGS.dataset, FLAGS.dataset_root, FLAGS.output_dir, use_fov_mask=FLAGS.use_fov_mask,
        stare_annotator=FLAGS.stare_annotator, num_shards=FLAGS.num_shards,
        num_workers=FLAGS.num_workers, overwrite=FLAGS.overwrite))


def run():
    app.run(lambda argv: sys.exit(main(argv)))


if __name__ == "__main__":
    run()
