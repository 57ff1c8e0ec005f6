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
import sys

from absl import app, flags

from deeplab.cli.model_flags import (
    define_model_flags,
    explicit_model_overrides,
    parse_float_list,
    parse_int_list,
)

define_model_flags()
flags.DEFINE_string("checkpoint_dir", None, "Training directory, ckpt-N prefix or .weights.h5.")
flags.DEFINE_string("eval_logdir", None, "metrics JSON and TensorBoard events go here.")
flags.DEFINE_string("dataset_dir", None, "Directory of <split>-*.tfrecord shards.")
flags.DEFINE_string("dataset", None, "Dataset name or dataset.json (default: --dataset_dir's).")
flags.DEFINE_string("eval_split", "val", "Split to evaluate.")
flags.DEFINE_multi_string("eval_scales", ["1.0"], "Inference scales, e.g. 0.5,0.75,1.0,1.25.")
flags.DEFINE_boolean("add_flipped_images", False, "Also average left-right flipped inputs.")
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


def evaluate_once(path, descriptor, dataset_name, overrides, writer=None):
    """Evaluates one checkpoint; prints the table, writes JSON and summaries."""
    import tensorflow as tf

    from deeplab.cli.common import check_num_classes
    from deeplab.data.pipeline import PreprocessConfig, make_dataset
    from deeplab.data.progress import Progress
    from deeplab.evaluation import Evaluator, format_table, named_metrics, write_metrics
    from deeplab.weights.store import load_model

    model = load_model(path, **overrides)
    check_num_classes(model, descriptor, path)
    step = _step_of(path)
    window = parse_int_list([FLAGS.sliding_window], "sliding_window") if FLAGS.sliding_window \
        else None
    if window is not None and len(window) != 2:
        raise ValueError("--sliding_window takes window,stride, e.g. 513,341")
    evaluator = Evaluator(model, parse_float_list(FLAGS.eval_scales, "eval_scales"),
                          FLAGS.add_flipped_images, window)
    batches = make_dataset(
        FLAGS.dataset_dir, FLAGS.eval_split, 1, is_training=False,
        config=PreprocessConfig(crop_size=None, min_resize_value=FLAGS.min_resize_value,
                                max_resize_value=FLAGS.max_resize_value,
                                resize_factor=FLAGS.resize_factor,
                                mean_pixel=model.config.backbone_spec.mean_pixel),
        dataset=dataset_name)
    total = descriptor.splits_to_sizes.get(FLAGS.eval_split, 0)
    if FLAGS.max_number_of_images:
        total = min(total or FLAGS.max_number_of_images, FLAGS.max_number_of_images)
    progress = Progress(total or 0, f"evaluating {path}", interval=15.0, log=print,
                        unit="images")
    matrix = evaluator.run(batches, descriptor.ignore_label, FLAGS.max_number_of_images,
                           progress)
    progress.close()
    metrics = named_metrics(matrix, descriptor.class_names)
    metrics.update(checkpoint=str(path), step=step, eval_split=FLAGS.eval_split,
                   eval_scales=list(parse_float_list(FLAGS.eval_scales, "eval_scales")),
                   add_flipped_images=FLAGS.add_flipped_images)
    print(format_table(metrics, descriptor.class_names))
    written = write_metrics(FLAGS.eval_logdir, metrics, step)
    print(f"mIoU {100 * metrics['miou']:.2f}% (wrote {written})")
    if writer is not None:
        with writer.as_default(step=step or 0):
            for key in ("miou", "pixel_accuracy", "mean_accuracy", "frequency_weighted_iou"):
                tf.summary.scalar(f"eval/{key}", metrics[key])
            for name, iou in zip(descriptor.class_names, metrics["per_class_iou"]):
                if iou == iou:
                    tf.summary.scalar(f"eval/iou/{name}", iou)
        writer.flush()
    return metrics


def _step_of(path) -> int | None:
    import re

    import tensorflow as tf

    text = str(path)
    if os.path.isdir(text):
        text = tf.train.latest_checkpoint(text) or ""
    match = re.search(r"ckpt-(\d+)$", text)
    return int(match.group(1)) if match else None


def main(argv):
    del argv
    import tensorflow as tf

    from deeplab.cli.common import dataset_from_flags, require
    from deeplab.data.errors import DataError
    from deeplab.data.pipeline import check_labeled

    try:
        require(FLAGS, "checkpoint_dir", "eval_logdir", "dataset_dir")
        dataset_name, descriptor = dataset_from_flags(FLAGS)
        overrides = explicit_model_overrides(FLAGS)
        check_labeled(FLAGS.dataset_dir, FLAGS.eval_split, dataset_name)
        writer = tf.summary.create_file_writer(FLAGS.eval_logdir)
        if not FLAGS.watch:
            evaluate_once(FLAGS.checkpoint_dir, descriptor, dataset_name, overrides, writer)
            return
        if not os.path.isdir(FLAGS.checkpoint_dir):
            raise ValueError("--watch needs --checkpoint_dir to be a training directory.")
        print(f"watching {FLAGS.checkpoint_dir} for new checkpoints (stops after "
              f"{FLAGS.watch_timeout}s without one)")
        for checkpoint in tf.train.checkpoints_iterator(
                FLAGS.checkpoint_dir, min_interval_secs=FLAGS.eval_interval_secs,
                timeout=FLAGS.watch_timeout):
            evaluate_once(checkpoint, descriptor, dataset_name, overrides, writer)
        print(f"no new checkpoint for {FLAGS.watch_timeout}s; stopping.")
    except (ValueError, FileNotFoundError, DataError) as error:
        sys.exit(f"deeplab-eval: {error}")


def run():
    """Console-script entry point."""
    app.run(main)


if __name__ == "__main__":
    run()
