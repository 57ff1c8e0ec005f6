"""Writes the deterministic synthetic segmentation data set (records + dataset.json).

Six classes (background, disc, square, triangle, cross, ring) on textured backgrounds, with
occlusions and a VOC-style ignore band; see deeplab/data/synthetic.py.
"""

from absl import flags

from deeplab.cli.common import converter_options, define_converter_flags
from deeplab.cli.runner import run_binary
from deeplab.data.descriptor import SYNTHETIC_DEFAULT_SIZES
from deeplab.data.synthetic import SyntheticConfig, build_synthetic

FLAGS = flags.FLAGS
flags.DEFINE_integer("train_size", SYNTHETIC_DEFAULT_SIZES["train"], "Training images.")
flags.DEFINE_integer("val_size", SYNTHETIC_DEFAULT_SIZES["val"], "Validation images.")
flags.DEFINE_integer("height", 128, "Image height.")
flags.DEFINE_integer("width", 128, "Image width.")
flags.DEFINE_integer("seed", 0, "Seed; the same seed gives the same images.")
define_converter_flags("./synthetic_tfrecord", 4)


def main(argv):
    del argv
    sizes = {"train": FLAGS.train_size, "val": FLAGS.val_size}
    config = SyntheticConfig({k: v for k, v in sizes.items() if v > 0}, FLAGS.height,
                             FLAGS.width, FLAGS.seed)
    build_synthetic(FLAGS.output_dir, config, **converter_options())


def run():
    """Entry point (the thin script, or a console script)."""
    run_binary("make_synthetic_data", main, prefix="error: ")


if __name__ == "__main__":
    run()
