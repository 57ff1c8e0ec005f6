r"""Converts any folder of images + a folder of masks to TFRecords + dataset.json.

Masks: single-channel or palette PNGs of class ids, or RGB colour masks with --color_table
(JSON list of {"color": [r, g, b], "name": ...}, or text lines "r g b name"). Example:

  python datasets/build_image_folder_data.py --image_folder=photos --mask_folder=masks \
    --num_classes=3 --class_names=background,cat,dog --val_fraction=0.1 --output_dir=tfrecord
"""


from absl import flags

from deeplab.cli.common import converter_options, define_converter_flags
from deeplab.cli.runner import run_binary
from deeplab.data.converters.image_folder import NUM_SHARDS, convert_image_folder

FLAGS = flags.FLAGS
flags.DEFINE_string("image_folder", None, "Folder of images.")
flags.DEFINE_string("mask_folder", None, "Folder of masks, matched to images by file stem.")
flags.DEFINE_integer("num_classes", None, "Classes including background; the ignore label is "
                     "not a class. Optional with --color_table.")
flags.DEFINE_integer("ignore_label", 255, "Label value of void pixels.")
flags.DEFINE_list("class_names", None, "Class names in id order.")
flags.DEFINE_string("color_table", None, "Colour table file for RGB colour masks.")
flags.DEFINE_integer("unknown_color_label", None,
                     "Label for colours missing from the table (default: an error).")
flags.DEFINE_float("val_fraction", 0.1, "Fraction of images for the val split (stable hash).")
flags.DEFINE_integer("seed", 0, "Seed of the train/val hash.")
flags.DEFINE_string("dataset_name", "custom", "Name stored in dataset.json.")
define_converter_flags("./tfrecord", NUM_SHARDS, required=("image_folder", "mask_folder"),
                       image_format="png")


def main(argv):
    del argv
    convert_image_folder(
        FLAGS.image_folder, FLAGS.mask_folder, FLAGS.output_dir, num_classes=FLAGS.num_classes,
        ignore_label=FLAGS.ignore_label, class_names=FLAGS.class_names,
        color_table_path=FLAGS.color_table, unknown_color_label=FLAGS.unknown_color_label,
        val_fraction=FLAGS.val_fraction, seed=FLAGS.seed, name=FLAGS.dataset_name,
        **converter_options())


def run():
    """Entry point (the thin script, or a console script)."""
    run_binary("build_image_folder_data", main, prefix="error: ")


if __name__ == "__main__":
    run()
