"""The original's optimizers: TF1's momentum rule, and Adam."""

from __future__ import annotations

import re

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="deeplab")
class MomentumOptimizer(keras.optimizers.Optimizer):
    """TF1's ``tf.train.MomentumOptimizer``, the original's ``--optimizer=momentum``.

    The update is ``accum = momentum * accum + g; w -= lr_t * accum``: the current learning
    rate scales the whole accumulated history. Keras' ``SGD(momentum=...)`` keeps
    ``v = momentum * v - lr_t * g; w += v`` instead, where each gradient keeps the rate of
    its own step. The two agree at a constant rate and differ whenever it changes (poly
    decay, the slow-start jump, step decay); measured against the original's code, Keras'
    rule moved the weights 7e-2 (relative) away from the original's after three poly steps.

    The slot holds the original's accumulator (the decayed sum of gradients, not a
    velocity scaled by the rate).

    Args:
        learning_rate: a float or a ``LearningRateSchedule`` (the step is the number of
            updates done, as the original's ``global_step``).
        momentum: the original's ``--momentum``.
        name: the optimizer's name; checkpoints name its slots after it.

    Example:
        >>> optimizer = MomentumOptimizer(0.01, momentum=0.9)
        >>> w = keras.Variable([1.0])
        >>> optimizer.apply([keras.ops.convert_to_tensor([2.0])], [w])  # accum 2, w 0.98

    Reference:
        ``tensorflow/python/training/momentum.py`` (TF1), used by the original's
        ``train.py``.
    """

    SLOT = "accumulator"

    def __init__(self, learning_rate=0.01, momentum: float = 0.9, name: str = "momentum",
                 **kwargs):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        if not 0.0 <= momentum <= 1.0:
            raise ValueError(f"--momentum must be in [0, 1], got {momentum}")
        self.momentum = float(momentum)

    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        self.accumulators = self.add_optimizer_variables(variables, self.SLOT)

    def update_step(self, gradient, variable, learning_rate):
        learning_rate = tf.cast(learning_rate, variable.dtype)
        gradient = tf.cast(gradient, variable.dtype)
        accumulator = self.accumulators[self._get_variable_index(variable)]
        self.assign(accumulator, accumulator * self.momentum + gradient)
        self.assign_sub(variable, learning_rate * accumulator)

    def get_config(self):
        config = super().get_config()
        config["momentum"] = self.momentum
        return config


def make_optimizer(name: str, learning_rate, momentum: float = 0.9,
                   adam_epsilon: float = 1e-8) -> keras.optimizers.Optimizer:
    """The optimizer of ``--optimizer``: ``momentum`` (TF1's rule) or ``adam``.

    TF1's ``AdamOptimizer`` and Keras' ``Adam`` share one rule (``epsilon`` added to
    ``sqrt(v)``, the bias correction folded into the rate).
    """
    if name == "adam":
        return keras.optimizers.Adam(learning_rate, epsilon=adam_epsilon, name="adam")
    if name == "momentum":
        return MomentumOptimizer(learning_rate, momentum=momentum)
    raise ValueError(f"--optimizer must be momentum or adam, got {name!r}")


# What ``saved_optimizer`` returns for the slots of Keras' SGD with momentum, which this
# project's releases before the TF1 rule wrote for --optimizer=momentum.
KERAS_SGD = "sgd"


def saved_optimizer(prefix: str) -> str | None:
    """The name of the optimizer whose slots the checkpoint ``prefix`` holds: ``momentum``,
    ``adam``, ``sgd`` (:data:`KERAS_SGD`), or None when it holds no slots.

    Keras tracks slots by position (``optimizer/_variables/<i>``), so a checkpoint of one
    optimizer can load into another without an error; the slots' own names (``<optimizer
    name>/<variable>_<slot>``, kept in the checkpoint's object graph) tell them apart.

    Raises:
        tf.errors.OpError: the checkpoint cannot be read.
    """
    from tensorflow.core.protobuf import trackable_object_graph_pb2

    reader = tf.train.load_checkpoint(prefix)
    graph = trackable_object_graph_pb2.TrackableObjectGraph()
    graph.ParseFromString(reader.get_tensor("_CHECKPOINTABLE_OBJECT_GRAPH"))
    for node in graph.nodes:
        for attribute in node.attributes:
            key = attribute.checkpoint_key
            if key.startswith("optimizer/") and "/_variables/" in key:
                # Keras makes names unique in a process: "sgd_2" is an "sgd".
                return re.sub(r"_\d+$", "", attribute.full_name.split("/", 1)[0])
    return None


def keras_sgd_to_accumulators(optimizer: MomentumOptimizer, last_learning_rate: float) -> None:
    """Turns Keras SGD velocities restored into ``optimizer``'s slots into the original's
    accumulators: ``accum = -v / lr``, ``lr`` being the rate of the last step taken.

    This is exact at a constant rate (where the two rules coincide); under a decaying
    rate Keras' velocity mixed the rates of past steps, and the accumulator is what TF1's
    rule would hold had the rate been the last one throughout.
    """
    if last_learning_rate <= 0.0:
        raise ValueError("cannot convert Keras SGD momentum slots saved at learning rate 0")
    for accumulator in optimizer.accumulators:
        accumulator.assign(-accumulator / last_learning_rate)
