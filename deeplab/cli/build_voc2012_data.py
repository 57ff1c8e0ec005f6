r"""Converts PASCAL VOC 2012 (and optionally SBD for train_aug) to TFRecords + dataset.json.

Flags as in the original release; palette PNGs are read as class ids, so SegmentationClass can be
used directly (SegmentationClassRaw from remove_gt_colormap.py works too). Example:

  python datasets/build_voc2012_data.py \
    --image_folder=VOCdevkit/VOC2012/JPEGImages \
    --semantic_segmentation_folder=VOCdevkit/VOC2012/SegmentationClass \
    --list_folder=VOCdevkit/VOC2012/ImageSets/Segmentation \
    --sbd_folder=benchmark_RELEASE/dataset --output_dir=tfrecord
"""


from absl import flags

from deeplab.cli.common import converter_options, define_converter_flags
from deeplab.cli.runner import run_binary
from deeplab.data.converters.voc import NUM_SHARDS, convert_voc2012

FLAGS = flags.FLAGS
flags.DEFINE_string("image_folder", "./VOCdevkit/VOC2012/JPEGImages", "Folder of images.")
flags.DEFINE_string("semantic_segmentation_folder", "./VOCdevkit/VOC2012/SegmentationClass",
                    "Folder of label PNGs (palette or single-channel class ids).")
flags.DEFINE_string("list_folder", "./VOCdevkit/VOC2012/ImageSets/Segmentation",
                    "Folder of the split lists (train.txt, val.txt, ...).")
flags.DEFINE_string("sbd_folder", None, "SBD's dataset/ folder (cls/*.mat, train.txt, val.txt) "
                    "to build train_aug.")
flags.DEFINE_string("segmentation_class_aug_folder", None,
                    "Alternatively, a folder of SegmentationClassAug PNGs for train_aug.")
flags.DEFINE_list("splits", None, "Splits to build (default: every list, plus train_aug).")
define_converter_flags("./tfrecord", NUM_SHARDS, image_format="jpg")
flags.DEFINE_bool("keep_duplicates", False, "Write a name listed twice in a split list twice, "
                  "as the original did (default: once, with a warning).")


def main(argv):
    del argv
    convert_voc2012(
        FLAGS.image_folder, FLAGS.semantic_segmentation_folder, FLAGS.list_folder,
        FLAGS.output_dir, splits=FLAGS.splits, sbd_folder=FLAGS.sbd_folder,
        segmentation_class_aug_folder=FLAGS.segmentation_class_aug_folder,
        keep_duplicates=FLAGS.keep_duplicates,
        **converter_options())


def run():
    """Entry point (the thin script, or a console script)."""
    run_binary("build_voc2012_data", main, prefix="error: ")


if __name__ == "__main__":
    run()
