"""The distributed training loop: tf.distribute, checkpoints that resume, summaries, NaN stop."""

from __future__ import annotations

import dataclasses
import functools
import math
import time

import keras
import numpy as np
import tensorflow as tf

from deeplab.data.progress import format_duration
from deeplab.model import DeepLab
from deeplab.quantization import simulation
from deeplab.runs.lock import RunLock
from deeplab.runs.store import write_run_config
from deeplab.training.class_balancing import resolve_class_balancing
from deeplab.training.losses import softmax_cross_entropy
from deeplab.training.multipliers import gradient_multipliers
from deeplab.training.optimizers import make_optimizer
from deeplab.training.run_checkpoints import (  # noqa: F401  (the trainer's errors)
    CheckpointWriteError,
    OptimizerMismatch,
    RunCheckpoints,
    TrainingDiverged,
)
from deeplab.training.safeguards import (
    CollapseWatch,
    LossWatch,
    StopSignals,
    collapse_warning,
)
from deeplab.training.schedules import DeepLabLearningRate
from deeplab.training.train_config import TrainConfig


class ProfileWindow:
    """A TensorBoard profile of a few steps (the original's ``--profile_logdir``).

    The first step traces and compiles the graph, so profiling starts one step later and
    covers ``steps`` steps; the trace lands in ``<logdir>/plugins/profile/<run>/``.
    """

    STEPS = 5

    def __init__(self, logdir: str, first_step: int, log=print, steps: int = STEPS):
        self.logdir, self.first_step, self.steps, self.log = logdir, first_step, steps, log
        self.running = False
        self.last_step = first_step

    def before_step(self, step: int) -> None:
        """Starts the profile before the first profiled step."""
        if step == self.first_step and not self.running:
            tf.profiler.experimental.start(self.logdir)
            self.running = True

    def after_step(self, step: int) -> None:
        """Ends the profile after its last step."""
        self.last_step = step
        if self.running and step >= self.first_step + self.steps:
            self.stop()

    def stop(self) -> None:
        """Ends the profile (if running); says so when no step was profiled."""
        if not self.running and self.last_step <= self.first_step:
            self.log(f"--profile_logdir: nothing profiled (profiling starts at step "
                     f"{self.first_step + 1}, after the traced first step; this run ended "
                     "before it)")
            return
        if self.running:
            tf.profiler.experimental.stop()
            self.running = False
            self.log(f"profiled steps {self.first_step + 1}-{self.last_step} to "
                     f"{self.logdir} (TensorBoard's Profile tab)")


def _is_chief(strategy) -> bool:
    """Only the chief writes checkpoints and summaries (multi-worker training)."""
    return bool(getattr(strategy.extended, "should_checkpoint", True))


class Trainer:
    """Builds model, optimizer, input and checkpointing under a tf.distribute strategy.

    Args:
        config: the run's :class:`TrainConfig`.
        strategy: a ``tf.distribute`` strategy (Mirrored, MultiWorkerMirrored, TPU, ...).
        log: where console lines go.
    """

    def __init__(self, config: TrainConfig, strategy=None, log=print):
        self.config = config
        self.strategy = strategy or tf.distribute.get_strategy()
        self.log = log
        self.is_chief = _is_chief(self.strategy)
        self.ignore_label = 255  # the original's; train() takes the data set's
        if config.mixed_precision != "none":
            keras.mixed_precision.set_global_policy(config.mixed_precision)
        replicas = self.strategy.num_replicas_in_sync
        if config.train_batch_size % replicas:
            raise ValueError(f"--train_batch_size {config.train_batch_size} must be divisible "
                             f"by the {replicas} replicas.")
        model_config = config.model
        if replicas > 1 and model_config.fine_tune_batch_norm:
            model_config = dataclasses.replace(model_config, sync_batch_norm=True)
        if config.seed is not None:
            # The same seed gives the same initial weights (and, in the pipeline, the same
            # input order and augmentation), so a seeded run can be repeated.
            keras.utils.set_random_seed(config.seed)
        with self.strategy.scope():
            self.model = DeepLab(model_config)
            at_input_size = model_config.upsampler_spec.trains_at_input_size
            # The logits the loss is taken on: the head's (merged) logits, plus each scale's
            # with an image pyramid, as the original's loss for each scale.
            self.head = self.model if at_input_size else self.model.training_logits_model()
            self.optimizer = self._optimizer()
            self.optimizer.build(self.model.trainable_variables)
        # One traced step per arithmetic: float, and int8-simulated from
        # --quantize_delay_step on (the simulation is chosen when a step is traced).
        self._step_functions = {}
        self.multipliers = gradient_multipliers(
            [v.path for v in self.model.trainable_variables],
            self.model.last_layer_prefixes(config.last_layers_contain_logits_only),
            config.last_layer_gradient_multiplier)
        self.checkpoints = RunCheckpoints(self)
        self.loss_watch = LossWatch()
        with self.strategy.scope():  # past the warm-up, a collapse to one class is reported
            self.collapse_watch = CollapseWatch(model_config.num_classes,
                                                config.training_number_of_steps,
                                                config.slow_start_step)
        self.stop = StopSignals(signals=())  # replaced while train() runs

    # === Setup ===
    def _optimizer(self):
        c = self.config
        base = c.adam_learning_rate if c.optimizer == "adam" else c.base_learning_rate
        self.schedule = DeepLabLearningRate(
            c.learning_policy, base, c.training_number_of_steps, c.learning_power,
            c.end_learning_rate, c.decay_steps, c.learning_rate_decay_step,
            c.learning_rate_decay_factor, c.slow_start_step, c.slow_start_learning_rate)
        optimizer = make_optimizer(c.optimizer, self.schedule, c.momentum, c.adam_epsilon)
        if c.mixed_precision == "mixed_float16":
            optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
        return optimizer

    @property
    def step(self) -> int:
        return int(self.optimizer.iterations.numpy())

    def restore_or_initialize(self) -> int:
        """Resumes from the newest usable checkpoint, else --tf_initial_checkpoint
        (:meth:`RunCheckpoints.restore_or_initialize`)."""
        return self.checkpoints.restore_or_initialize()

    def dataset(self, seed):
        from deeplab.data.pipeline import PreprocessConfig, make_dataset

        c = self.config
        preprocess = PreprocessConfig(
            crop_size=c.train_crop_size, min_resize_value=c.min_resize_value,
            max_resize_value=c.max_resize_value, resize_factor=c.resize_factor,
            min_scale_factor=c.min_scale_factor, max_scale_factor=c.max_scale_factor,
            scale_factor_step_size=c.scale_factor_step_size,
            mean_pixel=self.model.config.backbone_spec.mean_pixel)

        def dataset_fn(input_context):
            return make_dataset(c.dataset_dir, c.train_split, c.train_batch_size, True,
                                preprocess, dataset=c.dataset, seed=seed,
                                input_context=input_context)

        return self.strategy.distribute_datasets_from_function(dataset_fn)

    # === Step ===
    def _loss_and_gradients(self, images, labels):
        """One replica's forward and backward pass (XLA-compiled with ``xla``)."""
        c = self.config
        with tf.GradientTape() as tape:
            outputs = self.head(images, training=True)
            loss = tf.add_n([softmax_cross_entropy(
                logits, labels, c.model.num_classes, self.ignore_label, c.label_weights,
                c.top_k_percent_pixels, c.hard_example_mining_step, self.optimizer.iterations,
                upsample_logits=(c.upsample_logits
                                 and not c.model.upsampler_spec.trains_at_input_size))
                for logits in (outputs if isinstance(outputs, (list, tuple)) else [outputs])])
            regularization = tf.add_n(
                [tf.constant(0.0)] + [tf.cast(x, tf.float32) for x in self.model.losses])
            total = (loss + regularization) / self.strategy.num_replicas_in_sync
            # Identity unless the optimizer scales losses (float16 LossScaleOptimizer).
            scaled = self.optimizer.scale_loss(total)
        grads = tape.gradient(scaled, self.model.trainable_variables)
        self.collapse_watch.count(outputs[0] if isinstance(outputs, (list, tuple)) else outputs,
                                  labels, self.ignore_label)
        return loss, regularization, grads

    def _replica_step(self, quantized, compute_gradients, images, labels):
        # Entered here, in the replica's own thread: MirroredStrategy traces each replica
        # in a thread of its own, which does not inherit the caller's context.
        with simulation(quantized):
            loss, regularization, grads = compute_gradients(images, labels)
        variables = self.model.trainable_variables
        grads = [g * self.multipliers[v.path] if v.path in self.multipliers and g is not None
                 else g for g, v in zip(grads, variables)]
        # Outside XLA: the cross-replica gradient all-reduce happens in apply.
        self.optimizer.apply(grads, variables)
        return loss, regularization

    def quantized_at(self, step: int) -> bool:
        """Whether the step after ``step`` completed ones simulates int8 (the original's
        ``global_step >= quant_delay``)."""
        delay = self.config.model.quantize_delay_step
        return 0 <= delay <= step

    def train_step(self, batch):
        """One step on a distributed batch; returns (mean loss, mean regularization)."""
        quantized = self.quantized_at(self.step)
        if quantized not in self._step_functions:
            self._step_functions[quantized] = tf.function(
                functools.partial(self._distributed_step, quantized))
        return self._step_functions[quantized](batch)

    def _distributed_step(self, quantized, batch):
        compute_gradients = (tf.function(self._loss_and_gradients, jit_compile=True)
                             if self.config.xla else self._loss_and_gradients)
        schedule = getattr(self.model.backbone, "drop_path_schedule", None)
        if schedule is not None:  # NAS cells: drop path at this step's keep probability
            schedule.update(self.config.drop_path_keep_prob, self.optimizer.iterations,
                            self.config.training_number_of_steps)
        loss, regularization = self.strategy.run(
            self._replica_step,
            args=(quantized, compute_gradients, batch["image"], batch["label"]))
        mean = self.strategy.reduce(tf.distribute.ReduceOp.MEAN, loss, axis=None)
        reg = self.strategy.reduce(tf.distribute.ReduceOp.MEAN, regularization, axis=None)
        return mean, reg

    # === Loop ===
    def train(self) -> dict:
        """Runs to ``training_number_of_steps``; returns the last losses and timings.

        The chief holds an exclusive lock on ``train_logdir`` meanwhile (two trainers in one
        folder would interleave their checkpoints).

        Raises:
            RunFolderBusy: another live trainer holds ``train_logdir``.
        """
        local = "://" not in self.config.train_logdir  # no file locks on gs:// and the like
        if not (self.is_chief and local):
            return self._train()
        with RunLock(self.config.train_logdir) as lock:
            if lock.took_over:
                self.log(lock.took_over)
            return self._train()

    def _prepare(self) -> int:
        """Checks the data set against the config, records the run, resumes; returns the
        step to start from."""
        from deeplab.data.descriptor import get_dataset
        from deeplab.data.pipeline import check_labeled
        from deeplab.data.records import MOSTLY_VOID
        from deeplab.inference.labels import ClassLabels

        c = self.config
        self.descriptor = get_dataset(c.dataset or c.dataset_dir)
        self.ignore_label = self.descriptor.ignore_label
        if self.descriptor.num_classes != c.model.num_classes:
            # Checked before config.json is written: the data set's class names must not be
            # kept with a model of another class count.
            raise ValueError(
                f"--num_classes {c.model.num_classes} does not match the dataset's "
                f"{self.descriptor.num_classes} classes ({self.descriptor.name}); set "
                f"--num_classes={self.descriptor.num_classes}.")
        weights = resolve_class_balancing(c, self.descriptor, self.log, store=self.is_chief)
        if weights is not None:  # --class_balancing: kept in config.json with the run
            c.label_weights = weights
        if self.is_chief:
            # The class names and colours go with the run: predict and export name them.
            write_run_config(c, ClassLabels.of_dataset(self.descriptor).to_json())
        void = check_labeled(c.dataset_dir, c.train_split, c.dataset)
        if void is not None and void >= MOSTLY_VOID:
            self.log(f"warning: {100 * void:.1f}% of the label pixels in the first records of "
                     f"split {c.train_split!r} are void (ignore label {self.ignore_label}): "
                     "training learns almost nothing; check the masks and --num_classes")
        return self.restore_or_initialize()

    def _checked_step(self, batch) -> tuple[float, float]:
        """One step; a label outside the classes or a non-finite loss stops training."""
        c = self.config
        try:
            loss, reg = self.train_step(batch)
        except tf.errors.InvalidArgumentError as error:
            if "label value" not in str(error):
                raise
            raise TrainingDiverged(
                f"a label in {c.dataset_dir} ({c.train_split}) is outside [0, "
                f"{c.model.num_classes}) and is not the ignore label {self.ignore_label}: "
                "check --num_classes and the masks (class ids, 255 for void)."
            ) from None
        loss_value, reg_value = float(loss), float(reg)
        terms = {"cross-entropy": loss_value, "regularization": reg_value}
        bad = [f"the {name} term is {value}" for name, value in terms.items()
               if not math.isfinite(value)]
        if bad:
            last = self.checkpoints.manager.latest_checkpoint or "none yet"
            raise TrainingDiverged(
                f"at step {self.step} {' and '.join(bad)}: stopped without saving, the last "
                f"good checkpoint ({last}) is kept. Likely causes: labels "
                f"outside [0, {c.model.num_classes}) that are not the ignore label "
                f"{self.ignore_label} (check the dataset's labels), or a learning rate "
                f"too high (--base_learning_rate / --adam_learning_rate).")
        total = loss_value + reg_value
        reference = self.loss_watch.update(total)
        if reference is not None:
            self.log(f"warning: the loss is {total:.3g} at step {self.step}, "
                     f"{total / reference:.3g} times what it was ({reference:.3g}): training "
                     "is diverging; lower --base_learning_rate / --adam_learning_rate")
        return loss_value, reg_value

    def _log_scalars(self, writer, step: int, loss: float, reg: float, rate: float) -> None:
        """The console line with the ETA, and the TensorBoard scalars."""
        c = self.config
        eta = (c.training_number_of_steps - step) / max(rate, 1e-9)
        learning_rate = float(self.schedule(step - 1))
        self.log(f"step {step}/{c.training_number_of_steps} loss {loss:.4f} "
                 f"(+reg {reg:.4f}) lr {learning_rate:.3g} "
                 f"{rate * c.train_batch_size:.1f} img/s ETA {format_duration(eta)}")
        if writer is not None:
            with writer.as_default(step=step):
                tf.summary.scalar("loss/cross_entropy", loss)
                tf.summary.scalar("loss/regularization", reg)
                tf.summary.scalar("learning_rate", learning_rate)
                tf.summary.scalar("steps_per_second", rate)
                tf.summary.scalar("images_per_second", rate * c.train_batch_size)
        collapsed = self.collapse_watch.check(step, self.strategy)
        if collapsed is not None:
            self.log(collapse_warning(self.descriptor.class_names, *collapsed,
                                      self.collapse_watch.patience, step))

    def _train(self) -> dict:
        c = self.config
        start_step = self._prepare()
        if start_step >= c.training_number_of_steps:
            self.log(f"already at step {start_step} >= --training_number_of_steps; nothing to do")
            return {"step": start_step}
        # Fresh shuffle order after a resume (tf.data positions are not checkpointed).
        seed = None if c.seed is None else c.seed + start_step
        iterator = iter(self.dataset(seed))
        writer = tf.summary.create_file_writer(c.train_logdir) if self.is_chief else None
        run_start = time.monotonic()
        profile = (ProfileWindow(c.profile_logdir, start_step + 1, self.log)
                   if c.profile_logdir and self.is_chief else None)
        # SIGTERM / SIGINT: the step in progress finishes, is saved, and the run ends. The
        # handlers stay until the last save is written and listed: a signal during it (a
        # job's time limit at the end of a run) waits for it rather than cut it short.
        with StopSignals() as self.stop:
            try:
                step, loss, reg = self._loop(iterator, writer, profile, start_step)
            finally:
                if profile is not None:
                    profile.stop()
            self.save(step)  # the last step, unless the loop just saved it
            if writer is not None:
                writer.flush()
        result = {"step": step, "loss": loss, "regularization": reg,
                  "seconds": time.monotonic() - run_start}
        if self.stop.received:
            result["stopped_by"] = self.stop.name
            if step >= c.training_number_of_steps:
                self.log(f"{self.stop.name}: received at the end of the run; its last "
                         f"checkpoint (step {step}) is complete and saved, the run is done")
            else:
                self.log(f"{self.stop.name}: stopped after step {step} and saved it; run the "
                         "same command to resume")
        return result

    def _loop(self, iterator, writer, profile, step):
        """The steps up to ``training_number_of_steps``; returns (step, loss, reg)."""
        c = self.config
        last_save = last_summary = window_start = time.monotonic()
        window_step = step
        loss = reg = float("nan")
        while step < c.training_number_of_steps and not self.stop.received:
            batch = next(iterator)
            if self.quantized_at(step) and not self._step_functions.get(True):
                self.log(f"step {step + 1}: quantization-aware training from here on "
                         f"(--quantize_delay_step={c.model.quantize_delay_step}): BN folded, "
                         "int8 weights and activations simulated")
            if profile is not None:
                profile.before_step(step)
            loss, reg = self._checked_step(batch)
            step, now = self.step, time.monotonic()
            if profile is not None:
                profile.after_step(step)
            if step % c.log_steps == 0 or step == c.training_number_of_steps:
                rate = (step - window_step) / max(now - window_start, 1e-9)
                self._log_scalars(writer, step, loss, reg, rate)
                window_start, window_step = now, step
            if (writer is not None and c.save_summaries_images
                    and now - last_summary >= c.save_summaries_secs):
                self._image_summary(writer, batch, step)
                last_summary = now
            due_by_steps = c.save_interval_steps and step % c.save_interval_steps == 0
            if due_by_steps or now - last_save >= c.save_interval_secs:
                self.save(step)
                last_save = now
        return step, loss, reg

    def save(self, step: int) -> None:
        """Writes ``ckpt-<step>`` (:meth:`RunCheckpoints.save`)."""
        self.checkpoints.save(step)

    def _image_summary(self, writer, batch, step):
        from deeplab.inference.colormap import label_to_color_image

        images = self.strategy.experimental_local_results(batch["image"])[0][:1]
        labels = self.strategy.experimental_local_results(batch["label"])[0][:1, ..., 0]
        predictions = np.argmax(np.asarray(self.model(images, training=False)), -1)
        colormap = self.descriptor.colormap
        label_np = np.asarray(labels)
        label_np = np.where(label_np == self.ignore_label, 0, label_np)
        with writer.as_default(step=step):
            tf.summary.image("image", tf.cast(images, tf.uint8))
            tf.summary.image("label", label_to_color_image(label_np[0], colormap)[None])
            tf.summary.image("prediction", label_to_color_image(predictions[0], colormap)[None])
