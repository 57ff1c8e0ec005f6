"""Converts a retinal vessel data set (DRIVE, STARE, CHASE_DB1, HRF) to TFRecords + dataset.json.

Labels: 0 background, 1 vessel, 255 outside the field of view (DRIVE, HRF masks). The train/test
splits are documented in deeplab/data/converters/retinal.py.
"""


from absl import flags

from deeplab.cli.common import converter_options, define_converter_flags
from deeplab.cli.runner import run_binary
from deeplab.data.converters.retinal import DATASETS, NUM_SHARDS, convert_retinal

FLAGS = flags.FLAGS
flags.DEFINE_enum("dataset", None, list(DATASETS), "Which data set.")
flags.DEFINE_string("dataset_root", None, "The data set's extracted folder.")
flags.DEFINE_bool("use_fov_mask", True, "Label pixels outside the field of view as ignore.")
flags.DEFINE_enum("stare_annotator", "ah", ["ah", "vk"], "STARE labels: Hoover (ah) or vk.")
define_converter_flags("./tfrecord", NUM_SHARDS, required=("dataset", "dataset_root"))


def main(argv):
    del argv
    convert_retinal(
        FLAGS.dataset, FLAGS.dataset_root, FLAGS.output_dir, use_fov_mask=FLAGS.use_fov_mask,
        stare_annotator=FLAGS.stare_annotator, **converter_options())


def run():
    """Entry point (the thin script, or a console script)."""
    run_binary("build_retinal_data", main, prefix="error: ")


if __name__ == "__main__":
    run()
