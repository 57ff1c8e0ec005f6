"""Evaluates checkpoints: mIoU, per-class IoU, accuracies (``deeplab-eval``).

    deeplab-eval --checkpoint_dir=exp/synthetic/train --dataset_dir=data/synthetic \
        --eval_logdir=exp/synthetic/eval --eval_scales=0.75,1.0,1.25 --add_flipped_images

Images of any size are evaluated whole (padded internally to what the network needs); no
--eval_crop_size to get right. --sliding_window=513,341 tiles images too large to fit.
By default the latest checkpoint is evaluated once; --watch evaluates each new one and
stops after --watch_timeout seconds without one.
"""

from __future__ import annotations

import os

from absl import flags

from deeplab.cli.common import define_checkpoint_flag, define_dataset_flags, define_inference_flags
from deeplab.cli.model_flags import explicit_model_overrides, parse_float_list, parse_int_list
from deeplab.cli.runner import run_binary

define_checkpoint_flag("checkpoint_dir")
flags.DEFINE_string("eval_logdir", None, "metrics JSON and TensorBoard events go here.")
define_dataset_flags(split=("eval_split", "val", "Split to evaluate."))
define_inference_flags()
flags.DEFINE_string("sliding_window", None, "window,stride for images too large to fit.")
flags.DEFINE_integer("min_resize_value", None, "Resize smaller side to this before eval.")
flags.DEFINE_integer("max_resize_value", None, "Cap larger side at this before eval.")
flags.DEFINE_integer("resize_factor", None, "Resized dims = k * factor + 1.")
flags.DEFINE_integer("max_number_of_images", None, "Evaluate at most this many images.")
flags.DEFINE_boolean("watch", False, "Evaluate every new checkpoint of --checkpoint_dir.")
flags.DEFINE_integer("watch_timeout", 3600, "With --watch: stop after this many seconds "
                     "without a new checkpoint.")
flags.DEFINE_integer("eval_interval_secs", 300, "With --watch: minimum seconds between "
                     "evaluations.")
FLAGS = flags.FLAGS


def main(argv):
    del argv
    import tensorflow as tf

    from deeplab.cli.common import dataset_from_flags, require
    from deeplab.data.pipeline import check_labeled
    from deeplab.evaluation.evaluate import EvalConfig, evaluate_checkpoint

    require(FLAGS, "checkpoint_dir", "eval_logdir", "dataset_dir")
    dataset_name, descriptor = dataset_from_flags(FLAGS)
    window = (parse_int_list([FLAGS.sliding_window], "sliding_window")
              if FLAGS.sliding_window else None)
    config = EvalConfig(
        dataset_dir=FLAGS.dataset_dir, eval_logdir=FLAGS.eval_logdir,
        eval_split=FLAGS.eval_split,
        eval_scales=parse_float_list(FLAGS.eval_scales, "eval_scales"),
        add_flipped_images=FLAGS.add_flipped_images, sliding_window=window,
        min_resize_value=FLAGS.min_resize_value, max_resize_value=FLAGS.max_resize_value,
        resize_factor=FLAGS.resize_factor, max_number_of_images=FLAGS.max_number_of_images,
        model_overrides=explicit_model_overrides(FLAGS))
    check_labeled(FLAGS.dataset_dir, FLAGS.eval_split, dataset_name)
    writer = tf.summary.create_file_writer(FLAGS.eval_logdir)

    def evaluate_once(checkpoint):
        evaluate_checkpoint(checkpoint, config, descriptor, dataset_name, writer)

    if not FLAGS.watch:
        evaluate_once(FLAGS.checkpoint_dir)
        return
    if not os.path.isdir(FLAGS.checkpoint_dir):
        raise ValueError("--watch needs --checkpoint_dir to be a training directory.")
    print(f"watching {FLAGS.checkpoint_dir} for new checkpoints (stops after "
          f"{FLAGS.watch_timeout}s without one)")
    for checkpoint in tf.train.checkpoints_iterator(
            FLAGS.checkpoint_dir, min_interval_secs=FLAGS.eval_interval_secs,
            timeout=FLAGS.watch_timeout):
        evaluate_once(checkpoint)
    print(f"no new checkpoint for {FLAGS.watch_timeout}s; stopping.")


def run():
    """Console-script entry point."""
    run_binary("deeplab-eval", main)


if __name__ == "__main__":
    run()
