"""The original's learning-rate policies (``train_utils.get_model_learning_rate``)."""

from __future__ import annotations

import math

import keras
import tensorflow as tf

POLICIES = ("poly", "step", "cosine")


@keras.saving.register_keras_serializable(package="deeplab")
class DeepLabLearningRate(keras.optimizers.schedules.LearningRateSchedule):
    """poly / step / cosine decay after an optional slow start.

    For ``step < slow_start_step`` the rate is ``slow_start_learning_rate``; afterwards
    the policy runs on ``step - slow_start_step``:

    * poly: ``(base - end) * (1 - min(s, D) / D) ** power + end`` with
      ``D = decay_steps or training_number_of_steps - slow_start_step``;
    * step: ``base * decay_factor ** floor(s / decay_step)``;
    * cosine: ``0.5 * base * (1 + cos(pi * min(s, D) / D))``.

    Example:
        >>> schedule = DeepLabLearningRate("poly", 0.007, 30000)
        >>> float(schedule(15000))  # 0.007 * 0.5 ** 0.9
        0.003751...
    """

    def __init__(self, policy: str, base_learning_rate: float, training_number_of_steps: int,
                 learning_power: float = 0.9, end_learning_rate: float = 0.0,
                 decay_steps: float = 0.0, learning_rate_decay_step: int = 2000,
                 learning_rate_decay_factor: float = 0.1, slow_start_step: int = 0,
                 slow_start_learning_rate: float = 1e-4):
        if policy not in POLICIES:
            raise ValueError(f"learning_policy must be one of {POLICIES}, got {policy!r}.")
        self.policy = policy
        self.base_learning_rate = base_learning_rate
        self.training_number_of_steps = training_number_of_steps
        self.learning_power = learning_power
        self.end_learning_rate = end_learning_rate
        self.decay_steps = decay_steps
        self.learning_rate_decay_step = learning_rate_decay_step
        self.learning_rate_decay_factor = learning_rate_decay_factor
        self.slow_start_step = slow_start_step
        self.slow_start_learning_rate = slow_start_learning_rate

    def __call__(self, step):
        step = tf.cast(step, tf.float32)
        adjusted = tf.maximum(step - self.slow_start_step, 0.0)
        span = float(self.decay_steps or self.training_number_of_steps - self.slow_start_step)
        span = max(span, 1.0)
        clipped = tf.minimum(adjusted, span)
        if self.policy == "poly":
            rate = ((self.base_learning_rate - self.end_learning_rate)
                    * (1.0 - clipped / span) ** self.learning_power + self.end_learning_rate)
        elif self.policy == "step":
            rate = self.base_learning_rate * self.learning_rate_decay_factor ** tf.floor(
                adjusted / self.learning_rate_decay_step)
        else:
            rate = 0.5 * self.base_learning_rate * (1.0 + tf.cos(math.pi * clipped / span))
        return tf.where(step < self.slow_start_step, self.slow_start_learning_rate, rate)

    def get_config(self):
        return dict(
            policy=self.policy, base_learning_rate=self.base_learning_rate,
            training_number_of_steps=self.training_number_of_steps,
            learning_power=self.learning_power, end_learning_rate=self.end_learning_rate,
            decay_steps=self.decay_steps, learning_rate_decay_step=self.learning_rate_decay_step,
            learning_rate_decay_factor=self.learning_rate_decay_factor,
            slow_start_step=self.slow_start_step,
            slow_start_learning_rate=self.slow_start_learning_rate,
        )
