"""Converts palette ground-truth PNGs to single-channel class-id PNGs (the original's tool).

Not needed by build_voc2012_data.py, which reads palette PNGs as class ids; kept for users of
the original workflow and for other tools that expect SegmentationClassRaw.
"""


from absl import flags

from deeplab.cli.runner import run_binary
from deeplab.data.converters.voc import remove_gt_colormap

FLAGS = flags.FLAGS
flags.DEFINE_string("original_gt_folder", "./VOCdevkit/VOC2012/SegmentationClass",
                    "Original ground-truth annotations.")
flags.DEFINE_string("segmentation_format", "png", "Segmentation format.")
flags.DEFINE_string("output_dir", "./VOCdevkit/VOC2012/SegmentationClassRaw",
                    "Folder to save the modified ground truth annotations.")


def main(argv):
    del argv
    remove_gt_colormap(
        FLAGS.original_gt_folder, FLAGS.output_dir, FLAGS.segmentation_format)


def run():
    """Entry point (the thin script, or a console script)."""
    run_binary("remove_gt_colormap", main, prefix="error: ")


if __name__ == "__main__":
    run()
