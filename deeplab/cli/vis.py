r"""Writes colour predictions and overlays for a split (``deeplab-vis``).

    deeplab-vis --checkpoint_dir=exp/synthetic/train --dataset_dir=data/synthetic \
        --vis_logdir=exp/synthetic/vis --also_save_raw_predictions

Outputs as the original: ``segmentation_results/%06d_image.png`` and
``%06d_prediction.png`` (colour), plus ``%06d_overlay.png`` (image, mask and a legend);
with --also_save_raw_predictions, ``raw_segmentation_results/<image name>.png`` holding
class ids (Cityscapes: evaluation ids, for the official scripts). --vis_crop_size pads
every image to that crop as the original; --min_resize_value / --max_resize_value /
--resize_factor resize inputs as the original and bring the predictions back to the
stored image's size. --max_number_of_iterations=N visualises the latest checkpoint and then
each new one (N in all, 0: no limit), rewriting the pictures each time as the original.
--save_worst=K also writes ``worst/``: a panel for each of the K images with the lowest
mIoU (image | ground truth | prediction | error map), a contact sheet and an index.html.
"""

from __future__ import annotations

from pathlib import Path

from absl import flags

from deeplab.cli import original_flags
from deeplab.cli.common import (
    define_checkpoint_flag,
    define_dataset_flags,
    define_split_inference_flags,
    watch_settings,
)
from deeplab.cli.model_flags import explicit_model_overrides, parse_float_list
from deeplab.cli.runner import run_binary
from deeplab.inference.colormap import COLORMAPS

define_checkpoint_flag("checkpoint_dir")
flags.DEFINE_string("vis_logdir", None, "Where the pictures go.")
define_dataset_flags(split=("vis_split", "val", "Split to visualise."))
flags.DEFINE_enum("colormap_type", None, sorted(COLORMAPS),
                  "Colormap; default: the dataset's.")
flags.DEFINE_boolean("also_save_raw_predictions", False, "Also write class-id PNGs.")
define_split_inference_flags("vis", "max_number_of_iterations", "visualisations")
FLAGS = flags.FLAGS


def main(argv):
    del argv
    from deeplab.cli.common import crop_from_flag, dataset_from_flags, require
    from deeplab.data.pipeline import PreprocessConfig, check_labeled, make_dataset
    from deeplab.evaluation.evaluate import check_num_classes
    from deeplab.evaluation.visualization import visualize_split
    from deeplab.evaluation.watch import checkpoints_to_process, rotation_tolerated
    from deeplab.evaluation.worst import WorstImages, describe_worst
    from deeplab.inference.colormap import class_colors
    from deeplab.inference.labels import ClassLabels
    from deeplab.runs.store import load_model

    require(FLAGS, "checkpoint_dir", "vis_logdir", "dataset_dir")
    from deeplab.weights.zoo_cache import resolve_model_path  # preset:NAME
    FLAGS.checkpoint_dir = resolve_model_path(FLAGS.checkpoint_dir)
    original_flags.report_original_flags(FLAGS, "deeplab-vis")
    dataset_name, descriptor = dataset_from_flags(FLAGS)
    crop = crop_from_flag(FLAGS, "vis_crop_size")
    overrides = explicit_model_overrides(FLAGS, crop)
    preprocess = PreprocessConfig(crop_size=None, min_resize_value=FLAGS.min_resize_value,
                                  max_resize_value=FLAGS.max_resize_value,
                                  resize_factor=FLAGS.resize_factor)
    if FLAGS.save_worst:  # scoring images needs their labels
        check_labeled(FLAGS.dataset_dir, FLAGS.vis_split, dataset_name)
    limit, timeout = watch_settings(FLAGS, "max_number_of_iterations")
    checkpoints = checkpoints_to_process(FLAGS.checkpoint_dir, limit, FLAGS.eval_interval_secs,
                                         timeout, "max_number_of_iterations")
    for checkpoint in checkpoints:
        model = None
        with rotation_tolerated(checkpoint, FLAGS.checkpoint_dir):
            model = load_model(checkpoint, **overrides)
        if model is None:  # rotated away by a live trainer: the next one is newer
            continue
        check_num_classes(model, descriptor, checkpoint)
        batches = make_dataset(FLAGS.dataset_dir, FLAGS.vis_split, FLAGS.vis_batch_size,
                               is_training=False, config=preprocess, dataset=dataset_name,
                               with_labels=bool(FLAGS.save_worst))
        worst = (WorstImages(FLAGS.save_worst, descriptor.num_classes,
                             descriptor.ignore_label) if FLAGS.save_worst else None)
        # As the original: each checkpoint rewrites the same folder.
        logdir = Path(FLAGS.vis_logdir)
        count = visualize_split(
            model, batches, logdir, FLAGS.colormap_type or descriptor.colormap,
            descriptor.class_names, FLAGS.also_save_raw_predictions,
            parse_float_list(FLAGS.eval_scales, "eval_scales"), FLAGS.add_flipped_images,
            FLAGS.max_number_of_images, crop_size=crop,
            to_stored_size=bool(FLAGS.min_resize_value or FLAGS.max_resize_value),
            worst=worst)
        print(f"wrote {count} results to {logdir / 'segmentation_results'}")
        if worst is not None:
            colors = class_colors(descriptor.num_classes,
                                  FLAGS.colormap_type or descriptor.colormap,
                                  None if FLAGS.colormap_type else descriptor.colors)
            sheet = worst.write(logdir / "worst", ClassLabels.of_dataset(descriptor).names,
                                colors)
            print(describe_worst(worst, sheet))


def run():
    """Console-script entry point."""
    run_binary("deeplab-vis", main, describe_device=True)


if __name__ == "__main__":
    run()
