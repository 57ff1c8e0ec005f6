"""A training run's checkpoints: resume from the newest usable one, save only finite values,
leave nothing partial when a write fails."""

from __future__ import annotations

import glob
import os
import shutil
import tempfile

import tensorflow as tf

from deeplab.runs.finite import describe_variables, nonfinite_variables
from deeplab.runs.store import (
    checkpoint_prefixes,
    checkpoint_weights,
    optimizer_mismatch_message,
)
from deeplab.training.initialization import initialize_from_checkpoint
from deeplab.training.optimizers import KERAS_SGD, keras_sgd_to_accumulators, saved_optimizer


class OptimizerMismatch(ValueError):
    """A checkpoint of the run folder was written with another ``--optimizer``."""


class TrainingDiverged(RuntimeError):
    """The loss or a variable became NaN or Inf; the last good checkpoint is kept."""


class CheckpointWriteError(OSError):
    """A checkpoint could not be written (a full disk, say); the previous one is intact."""


class RunCheckpoints:
    """Restores and saves the ``ckpt-N`` of one run folder.

    Args:
        trainer: the :class:`~deeplab.training.trainer.Trainer` whose model, optimizer,
            schedule, config and log are saved and restored.
    """

    def __init__(self, trainer):
        self.trainer = trainer
        config = trainer.config
        self.checkpoint = tf.train.Checkpoint(model=trainer.model, optimizer=trainer.optimizer,
                                              weights=checkpoint_weights(trainer.model))
        # Every worker must take part in a save; only the chief's lands in train_logdir.
        self.directory = (config.train_logdir if trainer.is_chief
                          else tempfile.mkdtemp(prefix="deeplab-worker-"))
        self.manager = tf.train.CheckpointManager(
            self.checkpoint, self.directory, max_to_keep=config.max_to_keep,
            checkpoint_name="ckpt")
        self.saved_step = None

    # === Restore ===
    def restore_or_initialize(self) -> int:
        """Resumes from the newest usable checkpoint of train_logdir, else
        --tf_initial_checkpoint; returns the step.

        A checkpoint that cannot be read (a truncated ``.data`` shard, a missing ``.index``:
        a full disk or a copy cut short) or that holds NaN/Inf (written by an earlier
        release after a divergence) is skipped with a line naming it, and the one before it
        is used; if none is usable, training stops rather than start over. A checkpoint of
        another ``--optimizer`` stops it with what differs.
        """
        trainer = self.trainer
        unusable = []
        for prefix in checkpoint_prefixes(trainer.config.train_logdir):
            try:
                saved = saved_optimizer(prefix)
                self._check_optimizer(prefix, saved)
                self.checkpoint.restore(prefix).assert_existing_objects_matched()
            except OptimizerMismatch:
                raise
            except (tf.errors.OpError, ValueError, AssertionError, IndexError, OSError) as error:
                # A truncated .data shard raises "IndexError: Read less bytes than requested".
                reason = str(getattr(error, "message", error)).strip().splitlines()[0]
                unusable.append(prefix)
                trainer.log(f"{prefix} cannot be read ({reason[:200]}); trying the one before")
                continue
            bad = nonfinite_variables(self._variables())
            if bad:
                unusable.append(prefix)
                trainer.log(f"{prefix} holds NaN/Inf in {describe_variables(bad)} (saved after "
                            "training diverged); trying the one before")
                continue
            if saved == KERAS_SGD:
                self._convert_keras_sgd(prefix)
            trainer.log(f"resumed from {prefix} at step {trainer.step}")
            return trainer.step
        if unusable:
            raise ValueError(f"no usable checkpoint in {trainer.config.train_logdir} "
                             f"({', '.join(unusable)} are damaged or hold NaN/Inf): move them "
                             "away to start over, or restore them from a backup")
        config = trainer.config
        if config.tf_initial_checkpoint:
            for line in initialize_from_checkpoint(
                    trainer.model, config.tf_initial_checkpoint, config.initialize_last_layer,
                    config.last_layers_contain_logits_only):
                trainer.log(line)
        return trainer.step

    def _check_optimizer(self, prefix: str, saved: str | None) -> None:
        """Refuses a checkpoint written with another ``--optimizer`` (its slots would load
        into this one's by position)."""
        wanted = self.trainer.config.optimizer
        if saved == KERAS_SGD:
            saved = "momentum"  # an earlier release's --optimizer=momentum
        if saved is not None and saved != wanted:
            raise OptimizerMismatch(optimizer_mismatch_message(prefix, saved, wanted))

    def _convert_keras_sgd(self, prefix: str) -> None:
        """A checkpoint of an earlier release holds Keras SGD velocities: converted to the
        original's accumulators (see ``keras_sgd_to_accumulators``)."""
        trainer = self.trainer
        optimizer = getattr(trainer.optimizer, "inner_optimizer", trainer.optimizer)
        if trainer.step > 0:
            keras_sgd_to_accumulators(optimizer, float(trainer.schedule(trainer.step - 1)))
        trainer.log(f"{prefix} holds Keras SGD momentum slots (an earlier release's rule): "
                    "converted to the original's momentum accumulators")

    # === Save ===
    def _variables(self) -> list:
        return list(self.trainer.model.weights) + list(self.trainer.optimizer.variables)

    def save(self, step: int) -> None:
        """Writes ``ckpt-<step>`` (once per step: a repeated call is a no-op).

        Raises:
            TrainingDiverged: a variable holds NaN/Inf (nothing is written).
            CheckpointWriteError: the write failed; what it had written is removed.
        """
        if step == self.saved_step:
            return
        trainer = self.trainer
        last = self.manager.latest_checkpoint or "none yet"
        bad = nonfinite_variables(self._variables())
        if bad:
            raise TrainingDiverged(
                f"at step {step} NaN/Inf in {describe_variables(bad)} (the loss was still "
                f"finite): not saved, the last good checkpoint ({last}) is kept. Likely causes: "
                "a learning rate too high (--base_learning_rate / --adam_learning_rate), or "
                "labels outside the classes.")
        try:
            path = self.manager.save(checkpoint_number=step)
        except (tf.errors.OpError, OSError) as error:
            self._remove_partial(step)
            reason = str(getattr(error, "message", error)).strip().splitlines()[0][:200]
            raise CheckpointWriteError(
                f"could not write ckpt-{step} in {self.directory} ({reason}); the previous "
                f"checkpoint ({last}) is intact and nothing half-written is left: free space "
                "(or fix the folder) and run the same command to resume") from None
        self.saved_step = step
        if trainer.is_chief:
            trainer.log(f"saved {path}")

    def _remove_partial(self, step: int) -> None:
        """What a failed save leaves: TensorFlow's ``ckpt-N_temp`` folder, and the files
        of ``ckpt-N`` if it failed while merging them."""
        prefix = os.path.join(self.directory, f"ckpt-{step}")
        for path in glob.glob(prefix + "_temp*") + glob.glob(prefix + ".*"):
            if os.path.isdir(path):
                shutil.rmtree(path, ignore_errors=True)
            else:
                try:
                    os.remove(path)
                except OSError:
                    pass
