r"""Trains a DeepLab model (``python -m deeplab.cli.train`` or ``deeplab-train``).

    deeplab-train --model_variant=mobilenet_v2 --dataset_dir=data/synthetic \
        --train_logdir=exp/synthetic/train --train_crop_size=128,128 --train_batch_size=16 \
        --training_number_of_steps=600 --decoder_output_stride=4

The flags are the original release's (``--atrous_rates=6 --atrous_rates=12`` and
``--atrous_rates=6,12`` both work), plus --strategy, --mixed_precision and --seed.
Checkpoints (``ckpt-<step>``) and config.json go to --train_logdir; re-running the same
command resumes from the latest checkpoint.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import sys

from absl import flags

from deeplab.cli import original_flags
from deeplab.cli.common import define_dataset_flags, define_resize_flags
from deeplab.cli.model_flags import define_model_flags, model_config_from_flags, parse_int_list
from deeplab.cli.runner import run_binary
from deeplab.training.distribution import STRATEGIES
from deeplab.training.schedules import POLICIES
from deeplab.training.train_config import (
    CLASS_BALANCING,
    MIXED_PRECISIONS,
    OPTIMIZERS,
    TrainConfig,
    check_crop_size,
)


def define_train_flags() -> None:
    define_model_flags()
    f = flags
    # Where and what.
    f.DEFINE_string("train_logdir", None, "Checkpoints, summaries and config.json go here.")
    define_dataset_flags(split=("train_split", "train", "Split to train on."))
    # Schedule and optimisation (the original's names and defaults).
    f.DEFINE_integer("train_batch_size", 8, "Global batch size (all replicas).")
    f.DEFINE_multi_string("train_crop_size", ["513,513"], "Crop height,width.")
    f.DEFINE_integer("training_number_of_steps", 30000, "Steps to train.")
    f.DEFINE_enum("optimizer", "momentum", list(OPTIMIZERS), "Optimizer.")
    f.DEFINE_float("momentum", 0.9, "Momentum.")
    f.DEFINE_float("adam_learning_rate", 0.001, "Adam base learning rate (follows "
                   "--learning_policy; the original kept it constant).")
    f.DEFINE_float("adam_epsilon", 1e-08, "Adam epsilon.")
    f.DEFINE_enum("learning_policy", "poly", list(POLICIES), "Learning rate policy.")
    f.DEFINE_float("base_learning_rate", 0.0001, "Use 0.007 on VOC train_aug from ImageNet "
                   "weights, 0.0001 when fine-tuning.")
    f.DEFINE_float("learning_power", 0.9, "poly power.")
    f.DEFINE_float("end_learning_rate", 0.0, "poly end rate.")
    f.DEFINE_float("decay_steps", 0.0, "poly decay steps; 0 = steps - slow_start_step.")
    f.DEFINE_integer("learning_rate_decay_step", 2000, "step policy interval.")
    f.DEFINE_float("learning_rate_decay_factor", 0.1, "step policy factor.")
    f.DEFINE_integer("slow_start_step", 0, "Steps at --slow_start_learning_rate first.")
    f.DEFINE_float("slow_start_learning_rate", 1e-4, "Rate during the slow start.")
    f.DEFINE_float("weight_decay", 0.00004, "4e-5 for MobileNet/Xception, 1e-4 for ResNet.")
    f.DEFINE_float("last_layer_gradient_multiplier", 1.0, "Gradient multiplier of the last "
                   "layers.")
    f.DEFINE_boolean("upsample_logits", True, "Upsample logits to the labels (else labels "
                     "downsampled, nearest).")
    f.DEFINE_multi_string("label_weights", [], "Per-class loss weights (num_classes values).")
    f.DEFINE_enum("class_balancing", None, list(CLASS_BALANCING), "Set --label_weights from "
                  "the training split's class pixel counts (dataset.json's, else counted from "
                  "the records): median_frequency (w_c = median f / f_c) or "
                  "inverse_frequency; absent classes get 0. --label_weights given win.")
    f.DEFINE_float("top_k_percent_pixels", 1.0, "Fraction of hardest pixels in the loss.")
    f.DEFINE_integer("hard_example_mining_step", 0, "Steps to ramp to top_k_percent_pixels.")
    f.DEFINE_float("drop_path_keep_prob", 1.0, "NAS backbones: drop-path keep probability "
                   "of the last cell, falling from 1 over --training_number_of_steps.")
    f.DEFINE_boolean("fine_tune_batch_norm", True, "Update BN statistics (batch >= 12 advised).")
    # Augmentation.
    f.DEFINE_float("min_scale_factor", 0.5, "Random scale minimum.")
    f.DEFINE_float("max_scale_factor", 2.0, "Random scale maximum.")
    f.DEFINE_float("scale_factor_step_size", 0.25, "Random scale step.")
    define_resize_flags()
    # Initialisation.
    f.DEFINE_string("tf_initial_checkpoint", None, "Start from: our train dir / ckpt-N, a "
                    ".weights.h5, an original TF1 checkpoint prefix, or preset:NAME (a model "
                    "zoo checkpoint, downloaded once into $DEEPLAB_HOME/zoo).")
    f.DEFINE_boolean("initialize_last_layer", True, "Also load the last layers.")
    f.DEFINE_boolean("last_layers_contain_logits_only", False, "Last layers = logits only.")
    # Checkpoints, logs, summaries.
    f.DEFINE_integer("log_steps", 10, "Console/summary scalars every N steps.")
    f.DEFINE_integer("save_interval_secs", 1200, "Checkpoint every N seconds.")
    f.DEFINE_integer("save_interval_steps", 0, "Also checkpoint every N steps (0: off).")
    f.DEFINE_integer("max_to_keep", 5, "Checkpoints kept.")
    f.DEFINE_integer("save_summaries_secs", 600, "Image summaries every N seconds.")
    f.DEFINE_boolean("save_summaries_images", False, "Image/label/prediction summaries.")
    # Ours.
    f.DEFINE_enum("strategy", "mirrored", list(STRATEGIES), "tf.distribute strategy; "
                  "multi_worker reads TF_CONFIG.")
    f.DEFINE_string("tpu", None, "TPU name/address for --strategy=tpu.")
    f.DEFINE_enum("mixed_precision", "none", list(MIXED_PRECISIONS), "Compute dtype policy.")
    f.DEFINE_boolean("xla", False, "Compile each replica's forward and backward pass with XLA "
                     "(jit_compile); the gradient all-reduce and the update stay outside.")
    f.DEFINE_integer("seed", None, "Seed of the initial weights, the input order and the "
                     "augmentation (a seeded run can be repeated).")
    f.DEFINE_string("profile_logdir", None, "Write a TensorBoard profile of 5 steps (after "
                    "the first, which traces) here.")
    # The original's deployment flags: tf.distribute replaces them (one line says how).
    f.DEFINE_integer("num_clones", 1, "GPUs to train on (MirroredStrategy over them).")
    f.DEFINE_boolean("clone_on_cpu", False, "Clones on the CPU (logical CPU devices).")
    f.DEFINE_integer("num_replicas", 1, "Worker machines (MultiWorkerMirroredStrategy; the "
                     "cluster comes from TF_CONFIG).")
    f.DEFINE_integer("startup_delay_steps", 15, "Accepted; workers start together under "
                     "tf.distribute.")
    f.DEFINE_integer("num_ps_tasks", 0, "Accepted; all-reduce replaces parameter servers.")
    f.DEFINE_integer("task", 0, "Worker index; must match TF_CONFIG's.")
    original_flags.define_master()
    original_flags.define_keep_aspect_ratio()


def train_config_from_flags(values, num_classes: int) -> TrainConfig:
    # Checked before the ModelConfig (sized from it) can fail with a less telling message.
    crop = check_crop_size(parse_int_list(values.train_crop_size, "train_crop_size"))
    weights = [float(w) for v in values.label_weights for w in str(v).split(",") if w.strip()]
    model = model_config_from_flags(
        values, num_classes=num_classes, weight_decay=values.weight_decay,
        fine_tune_batch_norm=values.fine_tune_batch_norm,
        # As the original: the image-pooling kernel is sized from the training crop.
        crop_size=crop,
    )
    names = [f.name for f in dataclasses.fields(TrainConfig)]
    direct = {n: values[n].value for n in names if n in values and n not in (
        "model", "train_crop_size", "label_weights")}
    return TrainConfig(model=model, train_crop_size=crop,
                       label_weights=tuple(weights) if weights else 1.0, **direct)


define_train_flags()
FLAGS = flags.FLAGS


def strategy_plan(values):
    """The strategy from --strategy and the original's deployment flags (one line each)."""
    import tensorflow as tf

    from deeplab.training.distribution import Deployment, plan_strategy, read_tf_config

    names = ("num_clones", "clone_on_cpu", "num_replicas", "startup_delay_steps",
             "num_ps_tasks", "task")
    deployment = Deployment(**{n: values[n].value for n in names},
                            given=frozenset(n for n in names if values[n].present))
    return plan_strategy(deployment, values.strategy, values["strategy"].present,
                         len(tf.config.list_physical_devices("GPU")), read_tf_config())


def main(argv):
    del argv
    from deeplab.cli.common import dataset_from_flags, require
    from deeplab.training.distribution import make_strategy
    from deeplab.training.trainer import Trainer

    require(FLAGS, "train_logdir", "dataset_dir")
    original_flags.report_original_flags(FLAGS, "deeplab-train")
    plan = strategy_plan(FLAGS)
    for message in plan.messages:
        print(message)
    if not os.path.isdir(FLAGS.dataset_dir):
        raise ValueError(f"--dataset_dir {FLAGS.dataset_dir} is not a directory.")
    dataset_name, descriptor = dataset_from_flags(FLAGS)
    num_classes = FLAGS.num_classes if FLAGS["num_classes"].present else descriptor.num_classes
    config = train_config_from_flags(FLAGS, num_classes)
    config.dataset = dataset_name
    strategy = make_strategy(plan, FLAGS.tpu)
    print(f"training {config.model.model_variant} on {descriptor.name} "
          f"({descriptor.num_classes} classes) with {strategy.num_replicas_in_sync} "
          f"replica(s)")
    result = Trainer(config, strategy).train()
    if result.get("stopped_by"):
        # The shell's convention for a process ended by a signal: 128 + its number.
        sys.exit(128 + int(signal.Signals[result["stopped_by"]]))
    print(f"done at step {result['step']}")


def run():
    """Console-script entry point."""
    from deeplab.runs.lock import RunFolderBusy
    from deeplab.training.trainer import TrainingDiverged

    run_binary("deeplab-train", main, (TrainingDiverged, RunFolderBusy), describe_device=True)


if __name__ == "__main__":
    run()
