"""Converts ADE20K SceneParsing (ADEChallengeData2016) to TFRecords + dataset.json."""


from absl import flags

from deeplab.cli.common import converter_options, define_converter_flags
from deeplab.cli.runner import run_binary
from deeplab.data.converters.ade20k import NUM_SHARDS, convert_ade20k

FLAGS = flags.FLAGS
_ROOT = "./ADE20K/ADEChallengeData2016"
flags.DEFINE_string("train_image_folder", f"{_ROOT}/images/training", "Training images.")
flags.DEFINE_string("train_image_label_folder", f"{_ROOT}/annotations/training",
                    "Training annotations.")
flags.DEFINE_string("val_image_folder", f"{_ROOT}/images/validation", "Validation images.")
flags.DEFINE_string("val_image_label_folder", f"{_ROOT}/annotations/validation",
                    "Validation annotations.")
define_converter_flags("./ADE20K/tfrecord", NUM_SHARDS, image_format="png")


def main(argv):
    del argv
    convert_ade20k(
        FLAGS.train_image_folder, FLAGS.train_image_label_folder, FLAGS.val_image_folder,
        FLAGS.val_image_label_folder, FLAGS.output_dir, **converter_options())


def run():
    """Entry point (the thin script, or a console script)."""
    run_binary("build_ade20k_data", main, prefix="error: ")


if __name__ == "__main__":
    run()
