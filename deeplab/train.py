"""Trains a DeepLab model (``python -m deeplab.train`` or ``deeplab-train``).

    deeplab-train --model_variant=mobilenet_v2 --dataset_dir=data/synthetic \
        --train_logdir=exp/synthetic/train --train_crop_size=128,128 --train_batch_size=16 \
        --training_number_of_steps=600 --decoder_output_stride=4

The flags are the original release's (``--atrous_rates=6 --atrous_rates=12`` and
``--atrous_rates=6,12`` both work), plus --strategy, --mixed_precision and --seed.
Checkpoints (``ckpt-<step>``) and config.json go to --train_logdir; re-running the same
command resumes from the latest checkpoint.
"""

from __future__ import annotations

import os
import sys

from absl import app, flags

from deeplab.cli.train_flags import define_train_flags, train_config_from_flags

define_train_flags()
FLAGS = flags.FLAGS


def make_strategy(name: str, tpu: str | None = None):
    import tensorflow as tf

    if name == "multi_worker":
        if "TF_CONFIG" not in os.environ:
            raise ValueError("--strategy=multi_worker reads the cluster from TF_CONFIG, which "
                             "is not set.")
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "tpu":
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu or "")
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return tf.distribute.TPUStrategy(resolver)
    if name == "one_device":
        device = "/gpu:0" if tf.config.list_physical_devices("GPU") else "/cpu:0"
        return tf.distribute.OneDeviceStrategy(device)
    return tf.distribute.MirroredStrategy()


def main(argv):
    del argv
    from deeplab.cli.common import dataset_from_flags, require
    from deeplab.data.errors import DataError
    from deeplab.training.run_lock import RunFolderBusy
    from deeplab.training.trainer import Trainer, TrainingDiverged

    try:
        require(FLAGS, "train_logdir", "dataset_dir")
        if not os.path.isdir(FLAGS.dataset_dir):
            raise ValueError(f"--dataset_dir {FLAGS.dataset_dir} is not a directory.")
        dataset_name, descriptor = dataset_from_flags(FLAGS)
        num_classes = FLAGS.num_classes if FLAGS["num_classes"].present else descriptor.num_classes
        config = train_config_from_flags(FLAGS, num_classes)
        config.dataset = dataset_name
        strategy = make_strategy(FLAGS.strategy, FLAGS.tpu)
        print(f"training {config.model.model_variant} on {descriptor.name} "
              f"({descriptor.num_classes} classes) with {strategy.num_replicas_in_sync} "
              f"replica(s)")
        result = Trainer(config, strategy).train()
    except (TrainingDiverged, RunFolderBusy, ValueError, FileNotFoundError, DataError) as error:
        sys.exit(f"deeplab-train: {error}")
    print(f"done at step {result['step']}")


def run():
    """Console-script entry point."""
    app.run(main)


if __name__ == "__main__":
    run()
