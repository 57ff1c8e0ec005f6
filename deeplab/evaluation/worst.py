"""Where a model fails: the K images with the lowest per-image mIoU (``--save_worst=K``), one
panel each (image | ground truth | prediction | error map, with the image's name and score),
a contact sheet of all of them and an ``index.html``.

The collector sees every prediction the :class:`~deeplab.evaluation.evaluator.Evaluator`
makes, so it works with whatever produced it (whole images, crops, sliding windows,
multi-scale and flipped inference); it keeps only the K worst images' arrays.
"""

from __future__ import annotations

import dataclasses
import heapq
import html
import re
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from deeplab.evaluation.metrics import confusion_matrix, segmentation_metrics

CONTACT_SHEET = "contact_sheet.png"
INDEX = "index.html"
# Width of one panel on the contact sheet, in pixels; two panels a row.
SHEET_PANEL_WIDTH = 900
SHEET_COLUMNS = 2


@dataclasses.dataclass(frozen=True)
class ScoredImage:
    """One evaluated image: its position in the split, name, mIoU and arrays."""

    index: int
    name: str
    miou: float
    image: np.ndarray
    labels: np.ndarray
    predictions: np.ndarray


def image_miou(labels: np.ndarray, predictions: np.ndarray, num_classes: int,
               ignore_label: int) -> float:
    """One image's mIoU: the mean IoU over the classes in its ground truth or prediction
    (void excluded), as the split's mIoU; NaN when it has no labelled pixel."""
    matrix = confusion_matrix(labels, predictions, num_classes, ignore_label)
    if not matrix.sum():
        return float("nan")
    return segmentation_metrics(matrix)["miou"]


def file_safe(name: str) -> str:
    """A record's image name as a file name (its basename; other than letters, digits,
    ``.``, ``_`` and ``-`` becomes ``_``)."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", name.replace("\\", "/").rsplit("/", 1)[-1]) or "image"


class WorstImages:
    """Keeps the ``count`` images with the lowest mIoU (ties: the earlier image).

    Args:
        count: K, how many to keep.
        num_classes: the model's classes.
        ignore_label: the data set's void value.
    """

    def __init__(self, count: int, num_classes: int, ignore_label: int):
        if count < 1:
            raise ValueError(f"--save_worst must be >= 1, got {count}")
        self.count, self.num_classes, self.ignore_label = count, num_classes, ignore_label
        # A max-heap on (miou, index) through negated keys: its root is the best kept image,
        # the one a worse newcomer replaces.
        self._heap: list[tuple[float, int, ScoredImage]] = []

    def add(self, index: int, name: str, image: np.ndarray, labels: np.ndarray,
            predictions: np.ndarray) -> float:
        """Scores one image and keeps it if it is among the worst; returns its mIoU."""
        miou = image_miou(labels, predictions, self.num_classes, self.ignore_label)
        if miou != miou:
            return miou
        key = (-miou, -index)
        if len(self._heap) >= self.count and key <= self._heap[0][:2]:
            return miou
        entry = ScoredImage(index, name, miou, np.array(image, np.uint8, copy=True),
                            np.array(labels, copy=True), np.array(predictions, copy=True))
        if len(self._heap) < self.count:
            heapq.heappush(self._heap, (*key, entry))
        else:
            heapq.heapreplace(self._heap, (*key, entry))
        return miou

    def on_prediction(self, index: int, batch: dict, i: int, prediction: np.ndarray) -> None:
        """The :meth:`Evaluator.run` callback: scores image ``i`` of ``batch``."""
        h, w = prediction.shape
        name = batch["image_name"][i].numpy().decode() if "image_name" in batch else ""
        image = np.clip(np.asarray(batch["image"][i, :h, :w]), 0, 255).round()
        self.add(index, name or f"image {index:06d}", image,
                 np.asarray(batch["label"][i, :h, :w, 0]), prediction)

    @property
    def worst(self) -> list[ScoredImage]:
        """The kept images, worst first."""
        return [entry for *_, entry in sorted(self._heap, key=lambda e: (-e[0], -e[1]))]

    def write(self, directory: str | Path, class_names: Sequence[str], colors: np.ndarray,
              ) -> Path | None:
        """Replaces ``directory`` with one panel per kept image (``<rank>_<name>.png``),
        the contact sheet and ``index.html``; returns the contact sheet (None when no
        image had labelled pixels)."""
        from deeplab.analysis.class_figures import failure_panel
        from deeplab.analysis.plotting import png_bytes
        from deeplab.runs.atomic import atomic_directory, write_bytes, write_text

        worst = self.worst
        if not worst:
            return None
        directory = Path(directory)
        shutil.rmtree(directory, ignore_errors=True)  # an earlier run's panels
        with atomic_directory(directory) as folder:
            panels, rows = [], []
            for rank, entry in enumerate(worst, start=1):
                title = (f"{entry.name}: mIoU {100 * entry.miou:.1f}% "
                         f"(worst {rank} of {len(worst)})")
                data = png_bytes(failure_panel(entry.image, entry.labels, entry.predictions,
                                               colors, class_names, self.ignore_label, title))
                file = f"{rank:02d}_{file_safe(entry.name)}.png"
                write_bytes(folder / file, data)
                panels.append(data)
                rows.append((rank, entry, file))
            write_bytes(folder / CONTACT_SHEET, contact_sheet(panels))
            write_text(folder / INDEX, index_page(rows))
        return directory / CONTACT_SHEET


def contact_sheet(panels: Sequence[bytes], columns: int = SHEET_COLUMNS,
                  width: int = SHEET_PANEL_WIDTH) -> bytes:
    """The panels (PNG bytes), each scaled to ``width``, in rows of ``columns`` on white;
    PNG bytes."""
    import cv2

    images = []
    for data in panels:
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        height = round(image.shape[0] * width / image.shape[1])
        images.append(cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA))
    columns = min(columns, len(images))
    rows = [images[k:k + columns] for k in range(0, len(images), columns)]
    heights = [max(image.shape[0] for image in row) for row in rows]
    sheet = np.full((sum(heights), columns * width, 3), 255, np.uint8)
    top = 0
    for row, height in zip(rows, heights):
        for k, image in enumerate(row):
            sheet[top:top + image.shape[0], k * width:(k + 1) * width] = image
        top += height
    ok, encoded = cv2.imencode(".png", sheet)
    if not ok:
        raise OSError("could not encode the contact sheet")
    return encoded.tobytes()


def index_page(rows: Sequence[tuple[int, ScoredImage, str]]) -> str:
    """A page listing the panels, worst first: rank, image name, mIoU, the panel."""
    items = "\n".join(
        f"<tr><td>{rank}</td><td>{html.escape(entry.name)}</td>"
        f"<td>{100 * entry.miou:.1f}%</td><td><a href=\"{file}\"><img src=\"{file}\" "
        f"width=\"720\"></a></td></tr>" for rank, entry, file in rows)
    return ("<!doctype html>\n<meta charset=\"utf-8\">\n<title>worst images</title>\n"
            "<h1>Images with the lowest mIoU</h1>\n<p>Error map: wrong pixels in the colour "
            "of the class predicted there; white: right; grey: void.</p>\n<table>\n"
            "<tr><th>rank</th><th>image</th><th>mIoU</th><th>panel</th></tr>\n"
            f"{items}\n</table>\n")


def describe_worst(worst: WorstImages, sheet: Path | None) -> str:
    """The lines naming the worst images and where their panels are."""
    if sheet is None:
        return "worst images: none had labelled pixels"
    listed = ", ".join(f"{entry.name} {100 * entry.miou:.1f}%" for entry in worst.worst)
    return (f"worst {len(worst.worst)} images by mIoU: {listed}\n"
            f"their panels: {sheet} ({sheet.parent / INDEX})")
