"""Writes colour predictions and overlays for a split (``deeplab-vis``).

    deeplab-vis --checkpoint_dir=exp/synthetic/train --dataset_dir=data/synthetic \
        --vis_logdir=exp/synthetic/vis --also_save_raw_predictions

Outputs as the original: ``segmentation_results/%06d_image.png`` and
``%06d_prediction.png`` (colour), plus ``%06d_overlay.png`` (image, mask and a legend);
with --also_save_raw_predictions, ``raw_segmentation_results/<image name>.png`` holding
class ids (Cityscapes: evaluation ids, for the official scripts).
"""

from __future__ import annotations

from pathlib import Path

from absl import flags

from deeplab.cli.common import define_checkpoint_flag, define_dataset_flags, define_inference_flags
from deeplab.cli.model_flags import explicit_model_overrides, parse_float_list
from deeplab.cli.runner import run_binary
from deeplab.inference.colormap import COLORMAPS

define_checkpoint_flag("checkpoint_dir")
flags.DEFINE_string("vis_logdir", None, "Where the pictures go.")
define_dataset_flags(split=("vis_split", "val", "Split to visualise."))
flags.DEFINE_enum("colormap_type", None, sorted(COLORMAPS),
                  "Colormap; default: the dataset's.")
flags.DEFINE_boolean("also_save_raw_predictions", False, "Also write class-id PNGs.")
define_inference_flags()
flags.DEFINE_integer("max_number_of_images", None, "Visualise at most this many images.")
FLAGS = flags.FLAGS


def main(argv):
    del argv
    from deeplab.cli.common import dataset_from_flags, require
    from deeplab.data.pipeline import PreprocessConfig, make_dataset
    from deeplab.evaluation.evaluate import check_num_classes
    from deeplab.evaluation.visualization import visualize_split
    from deeplab.runs.store import load_model

    require(FLAGS, "checkpoint_dir", "vis_logdir", "dataset_dir")
    dataset_name, descriptor = dataset_from_flags(FLAGS)
    model = load_model(FLAGS.checkpoint_dir, **explicit_model_overrides(FLAGS))
    check_num_classes(model, descriptor, FLAGS.checkpoint_dir)
    batches = make_dataset(FLAGS.dataset_dir, FLAGS.vis_split, 1, is_training=False,
                           config=PreprocessConfig(crop_size=None), dataset=dataset_name,
                           with_labels=False)
    count = visualize_split(model, batches, FLAGS.vis_logdir,
                      FLAGS.colormap_type or descriptor.colormap, descriptor.class_names,
                      FLAGS.also_save_raw_predictions,
                      parse_float_list(FLAGS.eval_scales, "eval_scales"),
                      FLAGS.add_flipped_images, FLAGS.max_number_of_images)
    print(f"wrote {count} results to {Path(FLAGS.vis_logdir) / 'segmentation_results'}")


def run():
    """Console-script entry point."""
    run_binary("deeplab-vis", main)


if __name__ == "__main__":
    run()
