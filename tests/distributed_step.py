"""One training step on N logical CPU replicas (run as a subprocess by test_distributed.py).

Usage: python distributed_step.py <replicas> <data_dir> <logdir> <output.npz> [initial.npz]
"""

import sys

import tensorflow as tf

replicas, data_dir, logdir, output = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import keras  # noqa: E402
import numpy as np  # noqa: E402

# float64: the check is about the distribution logic (gradient all-reduce, synchronised BN),
# which must give the same step exactly. In float32 the different summation order of 2
# replicas vs 1 device moves the updated weights by ~1e-6, and by up to ~2e-5 for about one
# random initialisation in four (most likely a ReLU6 decision near its threshold flipping),
# which measures float32 rounding, not the logic: in float64 the two agree to ~1e-12.
keras.config.set_floatx("float64")
keras.mixed_precision.set_global_policy("float64")

from deeplab.config import ModelConfig  # noqa: E402
from deeplab.training.train_config import TrainConfig  # noqa: E402
from deeplab.training.trainer import Trainer  # noqa: E402

strategy = tf.distribute.MirroredStrategy([f"/cpu:{i}" for i in range(replicas)])
# No projection, so no dropout: the step is deterministic.
model = ModelConfig(num_classes=6, depth_multiplier=0.35, batch_norm_decay=0.9,
                    crop_size=(33, 33), sync_batch_norm=True, aspp_with_concat_projection=False)
config = TrainConfig(model, data_dir, logdir, train_crop_size=(33, 33), train_batch_size=4,
                     training_number_of_steps=1, optimizer="momentum", base_learning_rate=1e-3)
trainer = Trainer(config, strategy, log=lambda line: None)
if len(sys.argv) > 5:
    initial = np.load(sys.argv[5])
    for variable in trainer.model.weights:
        variable.assign(initial[variable.path])
else:
    np.savez(output.replace(".npz", "_initial.npz"),
             **{v.path: v.numpy() for v in trainer.model.weights})
trainer.ignore_label = 255
rng = np.random.default_rng(0)
batch = {"image": rng.uniform(0, 255, (4, 33, 33, 3)).astype("float32"),
         "label": rng.integers(0, 6, (4, 33, 33, 1)).astype("int32")}
dataset = strategy.experimental_distribute_dataset(tf.data.Dataset.from_tensors(batch))
loss, _ = trainer.train_step(next(iter(dataset)))
np.savez(output, loss=float(loss), **{v.path: v.numpy() for v in trainer.model.weights})
