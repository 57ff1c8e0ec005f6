"""What every evaluation writes beside ``metrics-<step>.json`` to show where a model fails:
the confusion matrix as counts (``confusion-<step>.csv``) and as a row-normalised heat map
(``confusion-<step>.png``), and the per-class IoU sorted worst first with each class's pixel
share (``iou-<step>.png``); the two pictures also go to TensorBoard at the checkpoint's step.

The figure code (and matplotlib) is imported when the pictures are drawn, not when a binary
starts. Drawing both for the quickstart's 6 classes takes about 0.15 s of a 2-core CPU.
"""

from __future__ import annotations

import csv
import dataclasses
import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from deeplab.runs.atomic import write_bytes, write_text

SUMMARY_TAGS = {"confusion": "eval/confusion_matrix", "iou": "eval/class_iou"}


@dataclasses.dataclass(frozen=True)
class Picture:
    """A written PNG: where, its size in pixels, its bytes (for TensorBoard) and tag."""

    path: Path
    size: tuple[int, int]
    png: bytes
    tag: str


def step_suffix(step: int | None) -> str:
    """``-<step>`` as in ``metrics-<step>.json``; empty for a model without a step."""
    return "" if step is None else f"-{step}"


def confusion_csv(matrix: np.ndarray, class_names: Sequence[str]) -> str:
    """The counts as CSV: a header of predicted classes, then one row per ground-truth
    class (its name, then its counts)."""
    buffer = io.StringIO()
    rows = csv.writer(buffer, lineterminator="\n")
    rows.writerow(["ground truth \\ predicted", *class_names])
    for name, counts in zip(class_names, np.asarray(matrix).tolist()):
        rows.writerow([name, *counts])
    return buffer.getvalue()


def write_eval_pictures(eval_logdir: str | Path, step: int | None, matrix: np.ndarray,
                        metrics: dict, class_names: Sequence[str],
                        title: str = "") -> tuple[Path, list[Picture]]:
    """Writes ``confusion<suffix>.csv``, ``confusion<suffix>.png`` and ``iou<suffix>.png``
    (each atomically) into ``eval_logdir``.

    Args:
        eval_logdir: the folder of ``metrics<suffix>.json``.
        step: the checkpoint's step (None: no suffix).
        matrix: [C, C] counts, rows ground truth.
        metrics: ``named_metrics`` of ``matrix`` (per-class IoU, mIoU).
        class_names: C names.
        title: names the model and split in the pictures' titles.

    Returns:
        The CSV's path and the two pictures.
    """
    from deeplab.analysis.class_figures import confusion_heatmap, iou_chart
    from deeplab.analysis.plotting import png_bytes, png_size

    directory = Path(eval_logdir)
    suffix = step_suffix(step)
    table = directory / f"confusion{suffix}.csv"
    write_text(table, confusion_csv(matrix, class_names))
    matrix = np.asarray(matrix)
    total = matrix.sum()
    share = matrix.sum(axis=1) / total if total else np.zeros(len(matrix))
    figures = {
        "confusion": confusion_heatmap(matrix, class_names, f"confusion matrix {title}"),
        "iou": iou_chart(metrics["per_class_iou"], share, class_names, metrics["miou"],
                         f"per-class IoU, worst first {title}"),
    }
    pictures = []
    for name, figure in figures.items():
        path = directory / f"{name}{suffix}.png"
        data = png_bytes(figure)
        write_bytes(path, data)
        pictures.append(Picture(path, png_size(data), data, SUMMARY_TAGS[name]))
    return table, pictures


def summarize_pictures(writer, pictures: Sequence[Picture], step: int) -> None:
    """The pictures as TensorBoard images at ``step`` (the Images tab of the eval folder).

    Written as ``tf.summary.image`` writes them (width, height, PNG bytes under the image
    plugin's metadata), from the PNG already encoded rather than decoded and encoded again.
    """
    import tensorflow as tf
    from tensorboard.plugins.image import metadata

    with writer.as_default(step=step):
        for picture in pictures:
            width, height = picture.size
            tf.summary.write(picture.tag, tf.constant([str(width).encode(),
                                                       str(height).encode(), picture.png]),
                             metadata=metadata.create_summary_metadata(None, None))


def describe_pictures(table: Path, pictures: Sequence[Picture], eval_logdir) -> str:
    """The lines that tell a user where the pictures are."""
    listed = ", ".join(f"{p.path} ({p.size[0]}x{p.size[1]})" for p in pictures)
    return (f"pictures: {listed}\n"
            f"confusion matrix counts: {table} (and in metrics.json); in TensorBoard: "
            f"tensorboard --logdir={eval_logdir} (Images tab)")
