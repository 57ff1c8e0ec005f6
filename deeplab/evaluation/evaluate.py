"""Evaluating one checkpoint on a split: metrics table, JSON files and TensorBoard scalars."""

from __future__ import annotations

import dataclasses
import os
import re

import tensorflow as tf

from deeplab.data.pipeline import PreprocessConfig, make_dataset
from deeplab.data.progress import Progress
from deeplab.evaluation.evaluator import Evaluator, format_table, named_metrics, write_metrics
from deeplab.evaluation.pictures import (
    describe_pictures,
    step_suffix,
    summarize_pictures,
    write_eval_pictures,
)
from deeplab.evaluation.worst import WorstImages, describe_worst
from deeplab.inference.colormap import class_colors
from deeplab.inference.labels import ClassLabels
from deeplab.quantization import describe_quantization
from deeplab.runs.store import stored_preset
from deeplab.weights.presets import zoo_comparison


@dataclasses.dataclass(frozen=True)
class EvalConfig:
    """The original's eval.py settings (the binary fills it from its flags).

    Attributes:
        dataset_dir, eval_split: the records to evaluate.
        eval_logdir: where ``metrics[-<step>].json`` and the TensorBoard events go.
        eval_scales, add_flipped_images: multi-scale and flipped inference.
        sliding_window: (window, stride) to tile images too large to fit, or None.
        min_resize_value, max_resize_value, resize_factor: the original's eval resizing.
        max_number_of_images: evaluate at most this many (None: all).
        model_overrides: ModelConfig fields given on the command line (e.g. output_stride=8).
        eval_crop_size: the original's crop: images are padded to it and the model's
            image pooling is sized from it, so the original's numbers can be reproduced;
            None evaluates whole images (padded only to what the network needs).
        eval_batch_size: images read per batch (one forward pass each with a crop).
        save_worst: write panels of this many images with the lowest mIoU (0: none).
    """

    dataset_dir: str
    eval_logdir: str
    eval_split: str = "val"
    eval_scales: tuple[float, ...] = (1.0,)
    add_flipped_images: bool = False
    sliding_window: tuple[int, int] | None = None
    min_resize_value: int | None = None
    max_resize_value: int | None = None
    resize_factor: int | None = None
    max_number_of_images: int | None = None
    model_overrides: dict = dataclasses.field(default_factory=dict)
    eval_crop_size: tuple[int, int] | None = None
    eval_batch_size: int = 1
    save_worst: int = 0

    def __post_init__(self):
        if self.sliding_window is not None and len(self.sliding_window) != 2:
            raise ValueError("--sliding_window takes window,stride, e.g. 513,341")
        if self.eval_crop_size is not None and (len(self.eval_crop_size) != 2
                                                or min(self.eval_crop_size) < 1):
            raise ValueError(f"--eval_crop_size takes height,width, e.g. 513,513; got "
                             f"{self.eval_crop_size}")
        if self.eval_batch_size < 1:
            raise ValueError(f"--eval_batch_size must be >= 1, got {self.eval_batch_size}")
        if self.save_worst < 0:
            raise ValueError(f"--save_worst must be >= 0, got {self.save_worst}")

    def load_model(self, path):
        """The checkpoint's model with the command line's overrides (and the crop)."""
        from deeplab.runs.store import load_model

        overrides = dict(self.model_overrides)
        if self.eval_crop_size:
            overrides["crop_size"] = tuple(self.eval_crop_size)
        return load_model(path, **overrides)


def check_num_classes(model, descriptor, path) -> None:
    """A checkpoint's classes must be the data set's (else eval and vis run silently wrong)."""
    if model.config.num_classes != descriptor.num_classes:
        raise ValueError(
            f"{path} predicts {model.config.num_classes} classes but {descriptor.name} has "
            f"{descriptor.num_classes}: use the data set the model was trained for "
            "(--dataset / --dataset_dir)")


def checkpoint_step(path) -> int | None:
    """The step of a ``ckpt-N`` prefix or of a training directory's latest checkpoint."""
    text = str(path)
    if os.path.isdir(text):
        text = tf.train.latest_checkpoint(text) or ""
    match = re.search(r"ckpt-(\d+)$", text)
    return int(match.group(1)) if match else None


def evaluate_checkpoint(path, config: EvalConfig, descriptor, dataset_name,
                        writer=None) -> dict:
    """Evaluates one checkpoint; prints the table, writes JSON, the confusion matrix (CSV
    and picture), the per-class IoU picture, the worst images with ``save_worst``, and
    summaries; the last lines say where the pictures are.

    Raises:
        ValueError: the checkpoint's classes are not the data set's, or it cannot be read.
    """
    model = config.load_model(path)
    check_num_classes(model, descriptor, path)
    quantized = describe_quantization(model)
    if quantized:
        print(quantized)
    step = checkpoint_step(getattr(model, "source_checkpoint", path))  # the one read
    evaluator = Evaluator(model, config.eval_scales, config.add_flipped_images,
                          config.sliding_window, config.eval_crop_size)
    batches = make_dataset(
        config.dataset_dir, config.eval_split, config.eval_batch_size, is_training=False,
        config=PreprocessConfig(crop_size=None, min_resize_value=config.min_resize_value,
                                max_resize_value=config.max_resize_value,
                                resize_factor=config.resize_factor,
                                mean_pixel=model.config.backbone_spec.mean_pixel),
        dataset=dataset_name)
    total = descriptor.splits_to_sizes.get(config.eval_split, 0)
    limit = config.max_number_of_images
    if limit:
        total = min(total or limit, limit)
    progress = Progress(total or 0, f"evaluating {path}", interval=15.0, log=print,
                        unit="images")
    worst = (WorstImages(config.save_worst, descriptor.num_classes, descriptor.ignore_label)
             if config.save_worst else None)
    matrix = evaluator.run(batches, descriptor.ignore_label, limit, progress,
                           on_prediction=worst.on_prediction if worst else None)
    progress.close()
    labels = ClassLabels.of_dataset(descriptor)
    metrics = named_metrics(matrix, descriptor.class_names)
    metrics.update(checkpoint=str(path), step=step, eval_split=config.eval_split,
                   eval_scales=list(config.eval_scales),
                   add_flipped_images=config.add_flipped_images,
                   eval_crop_size=list(config.eval_crop_size or []) or None,
                   quantization_aware=quantized is not None)
    print(format_table(metrics, descriptor.class_names))
    written = write_metrics(config.eval_logdir, metrics, step)
    print(f"mIoU {100 * metrics['miou']:.2f}% (wrote {written})")
    zoo = zoo_comparison(stored_preset(path), model.config.output_stride, config.eval_scales,
                         config.add_flipped_images, config.eval_split)
    if zoo:
        print(zoo)
    title = f"({'' if step is None else f'step {step}, '}{config.eval_split})"
    table, pictures = write_eval_pictures(config.eval_logdir, step, matrix, metrics,
                                          labels.names, title)
    if writer is not None:
        with writer.as_default(step=step or 0):
            for key in ("miou", "pixel_accuracy", "mean_accuracy", "frequency_weighted_iou"):
                tf.summary.scalar(f"eval/{key}", metrics[key])
            for name, iou in zip(descriptor.class_names, metrics["per_class_iou"]):
                if iou == iou:
                    tf.summary.scalar(f"eval/iou/{name}", iou)
        summarize_pictures(writer, pictures, step or 0)
        writer.flush()
    print(describe_pictures(table, pictures, config.eval_logdir))
    if worst is not None:
        colors = class_colors(descriptor.num_classes, descriptor.colormap, descriptor.colors)
        sheet = worst.write(os.path.join(config.eval_logdir, f"worst{step_suffix(step)}"),
                            labels.names, colors)
        print(describe_worst(worst, sheet))
    return metrics
