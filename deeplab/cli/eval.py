r"""Evaluates checkpoints: mIoU, per-class IoU, accuracies (``deeplab-eval``).

    deeplab-eval --checkpoint_dir=exp/synthetic/train --dataset_dir=data/synthetic \
        --eval_logdir=exp/synthetic/eval --eval_scales=0.75,1.0,1.25 --add_flipped_images

Images of any size are evaluated whole (padded internally to what the network needs), so
there is no crop size to get right; --eval_crop_size=513,513 pads every image to that crop
as the original did (its image pooling then averages over the padded crop, so the
original's numbers are reproduced), and --eval_batch_size runs that many crops per pass.
--sliding_window=513,341 tiles images too large to fit. By default the latest checkpoint is
evaluated once; --max_number_of_evaluations=N evaluates it and then each new one, N in all
(0: no limit, waiting for checkpoints forever as the original); --watch takes each new one
and stops after --watch_timeout seconds without one.

Beside metrics-<step>.json each evaluation writes the confusion matrix (confusion-<step>.csv
in pixel counts, confusion-<step>.png row-normalised) and the per-class IoU worst first
(iou-<step>.png), also as TensorBoard images; --save_worst=K adds worst-<step>/: a panel for
each of the K images with the lowest mIoU, a contact sheet and an index.html.
"""

from __future__ import annotations

from absl import flags

from deeplab.cli import original_flags
from deeplab.cli.common import (
    define_checkpoint_flag,
    define_dataset_flags,
    define_split_inference_flags,
    watch_settings,
)
from deeplab.cli.model_flags import explicit_model_overrides, parse_float_list, parse_int_list
from deeplab.cli.runner import run_binary

define_checkpoint_flag("checkpoint_dir")
flags.DEFINE_string("eval_logdir", None, "metrics JSON and TensorBoard events go here.")
define_dataset_flags(split=("eval_split", "val", "Split to evaluate."))
flags.DEFINE_string("sliding_window", None, "window,stride for images too large to fit.")
define_split_inference_flags("eval", "max_number_of_evaluations", "evaluations")
FLAGS = flags.FLAGS


def main(argv):
    del argv
    import tensorflow as tf

    from deeplab.cli.common import crop_from_flag, dataset_from_flags, require
    from deeplab.data.pipeline import check_labeled
    from deeplab.evaluation.evaluate import EvalConfig, evaluate_checkpoint
    from deeplab.evaluation.watch import checkpoints_to_process, rotation_tolerated
    from deeplab.runs.atomic import unwritable_reason

    require(FLAGS, "checkpoint_dir", "eval_logdir", "dataset_dir")
    from deeplab.weights.zoo_cache import resolve_model_path  # preset:NAME
    FLAGS.checkpoint_dir = resolve_model_path(FLAGS.checkpoint_dir)
    original_flags.report_original_flags(FLAGS, "deeplab-eval")
    dataset_name, descriptor = dataset_from_flags(FLAGS)
    crop = crop_from_flag(FLAGS, "eval_crop_size")
    window = (parse_int_list([FLAGS.sliding_window], "sliding_window")
              if FLAGS.sliding_window else None)
    config = EvalConfig(
        dataset_dir=FLAGS.dataset_dir, eval_logdir=FLAGS.eval_logdir,
        eval_split=FLAGS.eval_split,
        eval_scales=parse_float_list(FLAGS.eval_scales, "eval_scales"),
        add_flipped_images=FLAGS.add_flipped_images, sliding_window=window,
        min_resize_value=FLAGS.min_resize_value, max_resize_value=FLAGS.max_resize_value,
        resize_factor=FLAGS.resize_factor, max_number_of_images=FLAGS.max_number_of_images,
        model_overrides=explicit_model_overrides(FLAGS),  # EvalConfig adds the crop
        eval_crop_size=crop,
        eval_batch_size=FLAGS.eval_batch_size, save_worst=FLAGS.save_worst)
    check_labeled(FLAGS.dataset_dir, FLAGS.eval_split, dataset_name)
    reason = unwritable_reason(FLAGS.eval_logdir)
    if reason:
        raise ValueError(f"cannot write to --eval_logdir {FLAGS.eval_logdir}: {reason}; choose "
                         "a writable folder")
    writer = tf.summary.create_file_writer(FLAGS.eval_logdir)

    limit, timeout = watch_settings(FLAGS, "max_number_of_evaluations")
    for checkpoint in checkpoints_to_process(FLAGS.checkpoint_dir, limit,
                                             FLAGS.eval_interval_secs, timeout,
                                             "max_number_of_evaluations"):
        with rotation_tolerated(checkpoint, FLAGS.checkpoint_dir):
            evaluate_checkpoint(checkpoint, config, descriptor, dataset_name, writer)


def run():
    """Console-script entry point."""
    run_binary("deeplab-eval", main, describe_device=True)


if __name__ == "__main__":
    run()
