"""Scheduled drop path of the NAS cells (the original's ``NASBaseCell._apply_drop_path``)."""

from __future__ import annotations

import keras
import tensorflow as tf


class DropPathSchedule:
    """What drop path reads while training: the ``--drop_path_keep_prob`` and the training
    progress (step / ``--training_number_of_steps``, at most 1), set by the trainer.

    A plain object, so its variables are neither weights of the model nor saved with it:
    the progress follows from the optimizer's step, which is. Created inside the
    distribution strategy's scope (with the model), the variables are mirrored and written
    from the cross-replica context only.
    """

    def __init__(self):
        only_first = tf.VariableAggregation.ONLY_FIRST_REPLICA
        self.keep_prob = tf.Variable(1.0, trainable=False, name="drop_path_keep_prob",
                                     aggregation=only_first)
        self.progress = tf.Variable(0.0, trainable=False, name="drop_path_progress",
                                    aggregation=only_first)

    def update(self, keep_prob: float, step, total_steps: int) -> None:
        """Sets the keep probability and the progress of ``step`` (a tensor is fine)."""
        self.keep_prob.assign(keep_prob)
        self.progress.assign(tf.minimum(1.0, tf.cast(step, tf.float32) / float(total_steps)))


@keras.saving.register_keras_serializable(package="deeplab")
class DropPath(keras.layers.Layer):
    """Drops a cell operation's output for whole examples while training.

    The keep probability falls with depth and over training, as the original's:
    ``keep_cell = 1 - (cell_index + 1) / total_cells * (1 - keep_prob)`` and
    ``keep = 1 - min(1, step / total_steps) * (1 - keep_cell)``; kept examples are scaled by
    ``1 / keep``. The identity at inference, and while ``keep_prob`` is 1.

    Args:
        cell_index: the cell's index (0-based).
        total_cells: the number of cells of the network.
        schedule: the network's :class:`DropPathSchedule` (a fresh one when None).
        **kwargs: base layer arguments.

    Example:
        >>> DropPath(3, 12)(keras.ops.ones((2, 5, 5, 8)), training=False).shape
        (2, 5, 5, 8)

    Reference:
        Zoph et al., "Learning Transferable Architectures for Scalable Image Recognition",
        CVPR 2018 (ScheduledDropPath).
    """

    def __init__(self, cell_index: int, total_cells: int,
                 schedule: DropPathSchedule | None = None, **kwargs):
        super().__init__(**kwargs)
        if not 0 <= cell_index < total_cells:
            raise ValueError(f"DropPath: cell_index {cell_index} outside [0, {total_cells}).")
        self.cell_index = cell_index
        self.total_cells = total_cells
        self._schedule = [schedule or DropPathSchedule()]  # a list: not tracked by Keras

    @property
    def schedule(self) -> DropPathSchedule:
        return self._schedule[0]

    def keep_probability(self) -> tf.Tensor:
        schedule = self.schedule
        layer_ratio = (self.cell_index + 1) / self.total_cells
        keep_cell = 1.0 - layer_ratio * (1.0 - schedule.keep_prob)
        return 1.0 - schedule.progress * (1.0 - keep_cell)

    def call(self, inputs, training=None):
        if not training:
            return inputs
        keep = tf.cast(self.keep_probability(), inputs.dtype)
        noise = tf.random.uniform([tf.shape(inputs)[0], 1, 1, 1], dtype=inputs.dtype)
        return inputs * (1.0 / keep) * tf.floor(keep + noise)

    def get_config(self):
        config = super().get_config()
        config.update(cell_index=self.cell_index, total_cells=self.total_cells)
        return config
