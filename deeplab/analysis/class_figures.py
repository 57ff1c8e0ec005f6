"""Pictures of per-class results: the confusion matrix, per-class IoU, class shares of a data
set, and one image's failure panel.

Every figure is sized from its number of classes and its longest class name, so 150 classes
(ADE20K) stay readable: one row or column per class, never less than ``MIN_PITCH`` inches
(about 13 px) apart, with labels at a font size that fits that pitch.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter

from deeplab.analysis.plotting import new_figure, text_width

# Inches between two classes' rows (or columns), and the font size range of their labels.
MIN_PITCH, MAX_PITCH = 0.12, 0.45
MIN_FONT, MAX_FONT = 6.0, 9.0
# Grey at least 8 levels from every colour of the pascal, cityscapes, ade20k and mapillary
# colormaps, so void never reads as a class.
VOID_COLOR = (180, 180, 180)
CORRECT_COLOR = (255, 255, 255)


def class_pitch(count: int, budget: float = 6.0) -> tuple[float, float]:
    """(inches per class, label font size): ``budget`` inches shared by ``count`` classes,
    within [MIN_PITCH, MAX_PITCH], and the largest font whose line fits the pitch."""
    pitch = min(MAX_PITCH, max(MIN_PITCH, budget / max(count, 1)))
    font = min(MAX_FONT, max(MIN_FONT, pitch * 72.0 * 0.78))
    return pitch, font


def row_normalised(matrix: np.ndarray) -> np.ndarray:
    """Each ground-truth row divided by its pixels (NaN for a class without pixels)."""
    matrix = np.asarray(matrix, np.float64)
    totals = matrix.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(totals > 0, matrix / totals, np.nan)


def confusion_heatmap(matrix: np.ndarray, class_names: Sequence[str], title: str = "",
                      ) -> Figure:
    """The confusion matrix, each ground-truth row normalised to 1 (rows: ground truth,
    columns: prediction). Classes without ground-truth pixels are grey rows. Up to 20
    classes, each cell also shows its percentage.

    Args:
        matrix: [C, C] pixel counts.
        class_names: C names.
        title: the first title line (the counts' total is added).
    """
    matrix = np.asarray(matrix)
    count = len(class_names)
    shares = row_normalised(matrix)
    pitch, font = class_pitch(count)
    labels = max(text_width(name, font) for name in class_names) + 0.15
    left, bottom = labels + 0.35, labels + 0.35
    top, right = 0.55, 1.05
    side = count * pitch
    width, height = left + side + right, bottom + side + top
    figure = new_figure(width, height)
    axes = figure.add_axes((left / width, bottom / height, side / width, side / height))
    import matplotlib
    from matplotlib.colors import PowerNorm

    palette = matplotlib.colormaps["viridis"].with_extremes(bad="#d9d9d9")
    # A square-root scale: confusions of a few percent, the ones worth seeing, are not black.
    image = axes.imshow(np.ma.masked_invalid(shares), cmap=palette,
                        norm=PowerNorm(0.5, vmin=0.0, vmax=1.0), interpolation="nearest",
                        aspect="auto")
    ticks = np.arange(count)
    axes.set_xticks(ticks, labels=class_names, rotation=90, fontsize=font)
    axes.set_yticks(ticks, labels=class_names, fontsize=font)
    axes.tick_params(length=2, pad=1)
    axes.set_xlabel("predicted class", fontsize=9)
    axes.set_ylabel("ground truth class", fontsize=9)
    if count <= 20:
        for (row, column), share in np.ndenumerate(shares):
            if share == share and share >= 0.0005:
                axes.text(column, row, f"{100 * share:.1f}", ha="center", va="center",
                          fontsize=min(font, 7.5), color="black" if share > 0.45 else "white")
    bar = figure.add_axes(((left + side + 0.15) / width, bottom / height, 0.15 / width,
                           side / height))
    figure.colorbar(image, cax=bar).set_label("share of the class's pixels (square-root "
                                              "scale)", fontsize=8)
    bar.tick_params(labelsize=7)
    figure.suptitle(f"{title}\n{int(matrix.sum()):,} labelled pixels; rows normalised "
                    "(grey: no pixels of that class)".strip(), fontsize=9,
                    y=1 - 0.08 / height, va="top")
    return figure


def iou_chart(per_class_iou: Sequence[float], pixel_share: Sequence[float],
              class_names: Sequence[str], miou: float, title: str = "") -> Figure:
    """Horizontal IoU bars, worst class at the top; each bar says its IoU and the class's
    share of the labelled pixels. Classes absent from ground truth and prediction (IoU
    NaN) come last, marked absent.

    Args:
        per_class_iou: C IoUs (NaN: absent).
        pixel_share: C fractions of the ground-truth pixels.
        class_names: C names.
        miou: drawn as a dashed line.
        title: the title line.
    """
    iou = np.asarray(per_class_iou, np.float64)
    present = [i for i in np.argsort(np.nan_to_num(iou, nan=2.0), kind="stable")
               if iou[i] == iou[i]]
    absent = [i for i in range(len(iou)) if iou[i] != iou[i]]
    order = present + absent
    count = len(order)
    pitch, font = class_pitch(count, budget=5.0)
    pitch = max(pitch, 0.16)
    labels = max(text_width(class_names[i], font) for i in order) + 0.15
    left, right, top, bottom = labels + 0.1, 2.1, 0.55, 0.5
    plot = 4.2
    width, height = left + plot + right, bottom + count * pitch + top
    figure = new_figure(width, height)
    axes = figure.add_axes((left / width, bottom / height, plot / width,
                            count * pitch / height))
    import matplotlib

    palette = matplotlib.colormaps["RdYlGn"]
    rows = np.arange(count)
    values = np.nan_to_num(iou[order], nan=0.0)
    axes.barh(rows, 100 * values, height=0.75, color=palette(values), edgecolor="none")
    for row, index in enumerate(order):
        share = 100 * float(pixel_share[index])
        text = (f"{100 * iou[index]:.1f}%  ({share:.2g}% of pixels)" if iou[index] == iou[index]
                else "absent")
        axes.text(101, row, text, va="center", fontsize=font, clip_on=False)
    axes.axvline(100 * miou, color="#333333", linestyle="--", linewidth=0.8)
    axes.set_yticks(rows, labels=[class_names[i] for i in order], fontsize=font)
    axes.set_ylim(count - 0.5, -0.6)
    axes.set_xlim(0, 100)
    axes.set_xlabel("IoU (%)", fontsize=8)
    axes.tick_params(axis="x", labelsize=7)
    axes.tick_params(axis="y", length=0, pad=2)
    axes.spines[["top", "right"]].set_visible(False)
    figure.suptitle(f"{title or 'per-class IoU, worst first'}\nmIoU {100 * miou:.2f}% "
                    "(dashed line)", fontsize=9, y=1 - 0.06 / height, va="top")
    return figure


def class_share_chart(splits: dict[str, tuple[Sequence[float], Sequence[int]]],
                      class_names: Sequence[str], title: str = "") -> Figure:
    """Each class's share of a split's labelled pixels (log scale, largest first by the
    first split), one bar per split, with the number of images holding the class.

    Args:
        splits: split name -> (C pixel shares, C image counts).
        class_names: C names.
        title: the title line.
    """
    names = list(splits)
    first = np.asarray(splits[names[0]][0], np.float64)
    order = list(np.argsort(-first, kind="stable"))
    count = len(order)
    group = len(names)
    pitch, font = class_pitch(count * group, budget=6.0)
    pitch = max(pitch, 0.15)
    labels = max(text_width(class_names[i], font) for i in order) + 0.15
    left, right, top, bottom = labels + 0.1, 2.3, 0.75, 0.5
    plot = 4.0
    width, height = left + plot + right, bottom + count * group * pitch + top
    figure = new_figure(width, height)
    axes = figure.add_axes((left / width, bottom / height, plot / width,
                            count * group * pitch / height))
    shares = {name: np.asarray(splits[name][0], np.float64) for name in names}
    positive = [s[s > 0] for s in shares.values() if (s > 0).any()]
    floor = min(float(s.min()) for s in positive) / 2 if positive else 1e-6
    colors = ["#3b75af", "#ef8636", "#519e3e", "#c53a32", "#8d69b8", "#84584e"]
    for k, name in enumerate(names):
        rows = np.arange(count) * group + k
        values = 100 * shares[name][order]
        axes.barh(rows, np.where(values > 0, values, np.nan), height=0.8,
                  color=colors[k % len(colors)], label=name, left=0)
        images = np.asarray(splits[name][1])[order]
        for row, value, held in zip(rows, values, images):
            text = f"{value:.2g}% · {int(held)} images" if value > 0 else "absent"
            axes.text(105, row, text, va="center", fontsize=font, clip_on=False)
    axes.set_xscale("log")
    axes.set_xlim(100 * floor, 100)
    axes.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    axes.set_yticks(np.arange(count) * group + (group - 1) / 2,
                    labels=[class_names[i] for i in order], fontsize=font)
    axes.set_ylim(count * group - 0.5, -0.5)
    axes.set_xlabel("share of the labelled pixels (%, log scale)", fontsize=8)
    axes.tick_params(axis="x", labelsize=7)
    axes.tick_params(axis="y", length=0, pad=2)
    if group > 1:
        axes.legend(fontsize=7, loc="lower right", framealpha=0.8)
    figure.suptitle(title or "class pixel shares", fontsize=9, y=1 - 0.08 / height,
                    va="top")
    return figure


def error_map(labels: np.ndarray, predictions: np.ndarray, colors: np.ndarray,
              ignore_label: int) -> np.ndarray:
    """[H, W, 3] uint8: wrong pixels in their predicted class's colour, right ones white,
    void (``ignore_label``) grey."""
    out = np.asarray(colors, np.uint8)[predictions]
    out[labels == predictions] = CORRECT_COLOR
    out[labels == ignore_label] = VOID_COLOR
    return out


def colour_labels(labels: np.ndarray, colors: np.ndarray, ignore_label: int) -> np.ndarray:
    """[H, W, 3] uint8 class colours, void grey."""
    void = labels == ignore_label
    out = np.asarray(colors, np.uint8)[np.where(void, 0, labels)]
    out[void] = VOID_COLOR
    return out


def failure_panel(image: np.ndarray, labels: np.ndarray, predictions: np.ndarray,
                  colors: np.ndarray, class_names: Sequence[str], ignore_label: int,
                  title: str) -> Figure:
    """image | ground truth | prediction | errors, a title, and a legend of the classes in
    the ground truth or the prediction.

    Args:
        image: [H, W, 3] uint8.
        labels: [H, W] class ids, ``ignore_label`` for void.
        predictions: [H, W] class ids.
        colors: [>= C, 3] colour per class.
        class_names: C names.
        ignore_label: the void value.
        title: the title line (the image's name and score).
    """
    height, width = labels.shape
    panel = 2.6
    image_height = panel * min(2.0, max(0.35, height / max(width, 1)))
    shown = sorted(set(np.unique(labels).tolist()) | set(np.unique(predictions).tolist()))
    shown = [c for c in shown if c != ignore_label and c < len(class_names)]
    legend_rows = -(-len(shown) // 5) if shown else 0
    legend = 0.2 * legend_rows + 0.1
    top = 0.45
    figure_width, figure_height = 4 * panel + 0.2, image_height + top + legend + 0.25
    figure = new_figure(figure_width, figure_height)
    pictures = (
        ("image", image),
        ("ground truth", colour_labels(labels, colors, ignore_label)),
        ("prediction", np.asarray(colors, np.uint8)[predictions]),
        ("errors: predicted class (white: right, grey: void)",
         error_map(labels, predictions, colors, ignore_label)),
    )
    for k, (name, picture) in enumerate(pictures):
        axes = figure.add_axes(((0.1 + k * panel + 0.05) / figure_width,
                                (legend + 0.25) / figure_height, (panel - 0.1) / figure_width,
                                image_height / figure_height))
        axes.imshow(picture, interpolation="nearest", aspect="auto")
        axes.set_title(name, fontsize=7.5, pad=3)
        axes.set_xticks([])
        axes.set_yticks([])
        for spine in axes.spines.values():  # a thin frame: the error map is mostly white
            spine.set_linewidth(0.4)
    figure.suptitle(title, fontsize=9.5, y=1 - 0.06 / figure_height, va="top")
    if shown:
        handles = [Patch(facecolor=np.asarray(colors[c]) / 255.0, edgecolor="black",
                         linewidth=0.4, label=class_names[c]) for c in shown]
        figure.legend(handles=handles, loc="lower center", ncol=min(5, len(shown)),
                      fontsize=7.5, frameon=False, bbox_to_anchor=(0.5, 0.02),
                      handlelength=1.2, columnspacing=1.2)
    return figure
