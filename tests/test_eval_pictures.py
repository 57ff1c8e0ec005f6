"""What eval writes to show where a model fails: the confusion matrix (CSV, metrics.json,
heat map), the per-class IoU chart, TensorBoard images, and the worst images' panels."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image

from deeplab.analysis.plotting import DPI, png_size

NAMES = ("background", "disc", "square", "cross")
# Labels and predictions of a 2x3 image, and their confusion matrix counted by hand (rows:
# ground truth, columns: prediction; the void pixel is not counted, "cross" has no pixel).
LABELS = np.array([[0, 0, 1], [1, 2, 255]])
PREDICTIONS = np.array([[0, 1, 1], [2, 3, 0]])
BY_HAND = [[1, 1, 0, 0], [0, 1, 1, 0], [0, 0, 0, 1], [0, 0, 0, 0]]


def opened(path):
    """The file decoded by PIL as a PNG: (width, height)."""
    with Image.open(path) as image:
        assert image.format == "PNG"
        image.load()
        return image.size


def test_confusion_csv_metrics_and_heat_map_agree_with_a_matrix_by_hand(tmp_path):
    import matplotlib
    from matplotlib.colors import PowerNorm

    from deeplab.analysis.class_figures import confusion_heatmap
    from deeplab.evaluation.evaluator import named_metrics, write_metrics
    from deeplab.evaluation.metrics import confusion_matrix
    from deeplab.evaluation.pictures import write_eval_pictures

    matrix = confusion_matrix(LABELS, PREDICTIONS, 4, 255)
    metrics = named_metrics(matrix, NAMES)
    assert metrics["confusion_matrix"] == BY_HAND
    write_metrics(tmp_path, metrics, 7)
    assert json.loads((tmp_path / "metrics-7.json").read_text())["confusion_matrix"] == BY_HAND
    table, pictures = write_eval_pictures(tmp_path, 7, matrix, metrics, NAMES, "(step 7, val)")
    assert table == tmp_path / "confusion-7.csv"
    assert table.read_text() == ("ground truth \\ predicted,background,disc,square,cross\n"
                                 "background,1,1,0,0\ndisc,0,1,1,0\nsquare,0,0,0,1\n"
                                 "cross,0,0,0,0\n")
    assert [p.path.name for p in pictures] == ["confusion-7.png", "iou-7.png"]
    for picture in pictures:
        assert opened(picture.path) == picture.size == png_size(picture.path.read_bytes())

    # Each cell's colour is its row-normalised share on the colour scale; the row of a
    # class without pixels is grey. Sampled near each cell's corner, away from its text.
    figure = confusion_heatmap(matrix, NAMES)
    figure.canvas.draw()
    pixels = np.asarray(figure.canvas.buffer_rgba())[..., :3].astype(int)
    box = figure.axes[0].get_window_extent()
    cell_w, cell_h = box.width / 4, box.height / 4
    palette, norm = matplotlib.colormaps["viridis"], PowerNorm(0.5, vmin=0, vmax=1)
    shares = [[0.5, 0.5, 0, 0], [0, 0.5, 0.5, 0], [0, 0, 0, 1.0], [None] * 4]
    for row in range(4):
        for column in range(4):
            x = int(box.x0 + (column + 0.2) * cell_w)
            y = int(pixels.shape[0] - (box.y1 - (row + 0.2) * cell_h))
            share = shares[row][column]
            expected = ((217, 217, 217) if share is None
                        else np.round(255 * np.asarray(palette(norm(share))[:3])))
            assert np.abs(pixels[y, x] - expected).max() <= 2, (row, column)


def test_every_eval_writes_the_pictures_tensorboard_images_and_says_where(
        tiny_data, tiny_run, tmp_path, capsys):
    import tensorflow as tf

    from deeplab.data.descriptor import get_dataset
    from deeplab.evaluation.evaluate import EvalConfig, evaluate_checkpoint

    config = EvalConfig(dataset_dir=str(tiny_data), eval_logdir=str(tmp_path), save_worst=2)
    writer = tf.summary.create_file_writer(str(tmp_path))
    metrics = evaluate_checkpoint(f"{tiny_run}/ckpt-4", config, get_dataset(str(tiny_data)),
                                  str(tiny_data), writer)
    lines = capsys.readouterr().out.strip().splitlines()
    matrix = np.asarray(metrics["confusion_matrix"])
    # The matrix counts every labelled val pixel once (counted here from the records).
    labelled = 0
    for record in tf.data.TFRecordDataset(sorted(str(p) for p in tiny_data.glob("val-*"))):
        example = tf.train.Example.FromString(record.numpy()).features.feature
        label = tf.io.decode_png(example["image/segmentation/class/encoded"].bytes_list.value[0])
        labelled += int(np.sum(label.numpy() != 255))
    assert matrix.sum() == labelled == metrics["num_pixels"]
    assert np.allclose(np.diag(matrix) / (matrix.sum(0) + matrix.sum(1) - np.diag(matrix)),
                       np.nan_to_num(metrics["per_class_iou"]))
    rows = (tmp_path / "confusion-4.csv").read_text().splitlines()
    assert [list(map(int, r.split(",")[1:])) for r in rows[1:]] == matrix.tolist()
    # The last lines say where everything is, with each picture's size.
    sizes = {}
    for line in lines[-4:]:
        for path, width, height in __import__("re").findall(r"(\S+\.png) \((\d+)x(\d+)\)", line):
            sizes[path] = (int(width), int(height))
    assert set(sizes) == {f"{tmp_path}/confusion-4.png", f"{tmp_path}/iou-4.png"}
    for path, size in sizes.items():
        assert opened(path) == size
    assert f"{tmp_path}/confusion-4.csv" in lines[-3]
    assert lines[-1] == (f"their panels: {tmp_path}/worst-4/contact_sheet.png "
                         f"({tmp_path}/worst-4/index.html)")
    panels = sorted((tmp_path / "worst-4").glob("0*.png"))
    assert [p.name[:3] for p in panels] == ["01_", "02_"]
    for path in [*panels, tmp_path / "worst-4" / "contact_sheet.png"]:
        assert min(opened(path)) > 100
    # TensorBoard: both pictures at the checkpoint's step, as the PNGs written.
    images = {}
    for events in tmp_path.glob("events.out.tfevents.*"):
        for event in tf.compat.v1.train.summary_iterator(str(events)):
            for value in event.summary.value:
                if value.metadata.plugin_data.plugin_name == "images":
                    images[value.tag] = (event.step, tf.make_ndarray(value.tensor))
    assert set(images) == {"eval/confusion_matrix", "eval/class_iou"}
    for tag, name in (("eval/confusion_matrix", "confusion-4.png"),
                      ("eval/class_iou", "iou-4.png")):
        step, tensor = images[tag]
        assert step == 4 and tensor[2] == (tmp_path / name).read_bytes()
        assert (int(tensor[0]), int(tensor[1])) == opened(tmp_path / name)


def _image(label_rows, prediction_rows):
    return np.array(label_rows), np.array(prediction_rows)


def test_worst_images_are_the_lowest_mious_in_order(tmp_path):
    from deeplab.evaluation.worst import WorstImages

    # Per-image mIoU by hand: (classes in the ground truth or prediction) mean of IoU.
    cases = [
        _image([[0, 1]], [[0, 1]]),              # 1.0
        _image([[0, 0, 1, 1]], [[0, 1, 1, 1]]),  # (1/2 + 2/3) / 2 = 0.5833
        _image([[0, 1]], [[1, 0]]),              # 0.0
        _image([[0, 0, 255]], [[1, 1, 0]]),      # class 0: 0/2, class 1: 0/2 -> 0.0 (later)
        _image([[255, 255]], [[0, 1]]),          # no labelled pixel: not scored
        _image([[0, 2, 2]], [[0, 2, 1]]),        # (1 + 1/2 + 0) / 3 = 0.5
    ]
    worst = WorstImages(3, 3, 255)
    scores = [worst.add(i, f"img{i}", np.zeros((*labels.shape, 3), np.uint8), labels, pred)
              for i, (labels, pred) in enumerate(cases)]
    assert np.allclose(scores[:4] + scores[5:], [1.0, 7 / 12, 0.0, 0.0, 0.5])
    assert scores[4] != scores[4]
    assert [(e.name, round(e.miou, 4)) for e in worst.worst] == [
        ("img2", 0.0), ("img3", 0.0), ("img5", 0.5)]
    sheet = worst.write(tmp_path / "worst", ("background", "disc", "square"),
                        np.array([[0, 0, 0], [128, 0, 0], [0, 128, 0]], np.uint8))
    assert sorted(p.name for p in (tmp_path / "worst").iterdir()) == [
        "01_img2.png", "02_img3.png", "03_img5.png", "contact_sheet.png", "index.html"]
    index = (tmp_path / "worst" / "index.html").read_text()
    assert index.index("img2") < index.index("img3") < index.index("img5")
    assert "50.0%" in index
    # The contact sheet holds the three panels (two a row) scaled to 900 px wide.
    scaled = [round(900 * h / w) for w, h in (opened(tmp_path / "worst" / n) for n in
                                               ("01_img2.png", "02_img3.png", "03_img5.png"))]
    assert opened(sheet) == (1800, max(scaled[:2]) + scaled[2])


def test_error_map_colours_wrong_pixels_by_predicted_class_and_void_grey():
    from deeplab.analysis.class_figures import CORRECT_COLOR, VOID_COLOR, error_map

    colors = np.array([[0, 0, 0], [200, 0, 0], [0, 200, 0]], np.uint8)
    out = error_map(np.array([[0, 1, 255, 2]]), np.array([[0, 2, 1, 0]]), colors, 255)
    assert out[0].tolist() == [list(CORRECT_COLOR), [0, 200, 0], list(VOID_COLOR), [0, 0, 0]]


@pytest.mark.slow
def test_worst_images_with_multi_scale_flips_and_sliding_windows(tiny_data, tiny_run):
    """The collector scores what the evaluator predicted, however it predicted it: its
    order is the order of the per-image mIoUs counted here class by class."""
    from deeplab.data.pipeline import PreprocessConfig, make_dataset
    from deeplab.evaluation.evaluator import Evaluator
    from deeplab.evaluation.worst import WorstImages
    from deeplab.runs.store import load_model

    model = load_model(f"{tiny_run}/ckpt-4")
    evaluator = Evaluator(model, (0.75, 1.0), True, sliding_window=(24, 12))
    worst = WorstImages(2, 6, 255)
    seen = []

    def both(index, batch, i, prediction):
        worst.on_prediction(index, batch, i, prediction)
        seen.append((batch["image_name"][i].numpy().decode(),
                     np.asarray(batch["label"][i, :, :, 0]), prediction))

    evaluator.run(make_dataset(str(tiny_data), "val", 1, False, PreprocessConfig(None)), 255,
                  max_images=3, on_prediction=both)
    assert len(seen) == 3
    by_hand = {}
    for name, labels, prediction in seen:
        ious = []
        for c in range(6):
            truth, predicted = (labels == c), (prediction == c) & (labels != 255)
            if (truth | predicted).any():
                ious.append((truth & predicted).sum() / (truth | predicted).sum())
        by_hand[name] = float(np.mean(ious))
    expected = sorted(by_hand, key=lambda n: by_hand[n])[:2]
    assert [e.name for e in worst.worst] == expected
    assert np.allclose([e.miou for e in worst.worst], [by_hand[n] for n in expected])


@pytest.mark.parametrize("chart", ["confusion", "iou"])
def test_150_classes_render_readable(tmp_path, chart):
    """ADE20K's 151 names: every label at 6 pt or more, none overlapping its neighbour,
    none cut off by the picture's edge; the PNG has the size the figure states."""
    from deeplab.analysis.class_figures import MIN_FONT, confusion_heatmap, iou_chart
    from deeplab.analysis.plotting import save_figure
    from deeplab.data.descriptor import get_dataset
    from deeplab.evaluation.metrics import segmentation_metrics

    names = get_dataset("ade20k").class_names
    assert len(names) == 151
    rng = np.random.default_rng(0)
    matrix = rng.integers(0, 30, (151, 151)) + np.diag(rng.integers(50, 3000, 151))
    if chart == "confusion":
        figure = confusion_heatmap(matrix, names, "confusion matrix (step 1, val)")
    else:
        metrics = segmentation_metrics(matrix)
        figure = iou_chart(metrics["per_class_iou"], matrix.sum(1) / matrix.sum(), names,
                           metrics["miou"])
    size = save_figure(figure, tmp_path / "chart.png")
    width, height = figure.get_size_inches() * DPI
    assert size == opened(tmp_path / "chart.png") == (round(width), round(height))
    renderer = figure.canvas.get_renderer()
    axes = figure.axes[0]
    labels = [axes.get_yticklabels()]
    if chart == "confusion":
        labels.append(axes.get_xticklabels())
    for ticks in labels:
        assert len(ticks) == 151
        boxes = [t.get_window_extent(renderer) for t in ticks]
        assert all(t.get_fontsize() >= MIN_FONT for t in ticks)
        for box in boxes:
            assert box.x0 >= 0 and box.y0 >= 0 and box.x1 <= size[0] and box.y1 <= size[1]
        vertical = ticks[0].get_rotation() == 0
        spans = sorted((b.y0, b.y1) if vertical else (b.x0, b.x1) for b in boxes)
        assert all(a[1] <= b[0] + 0.5 for a, b in zip(spans, spans[1:]))
    for text in axes.texts:  # the IoU and pixel share beside each bar
        box = text.get_window_extent(renderer)
        assert box.x1 <= size[0] and box.y0 >= 0


def test_dumped_png_bytes_decode(tmp_path):
    from deeplab.analysis.plotting import new_figure, png_bytes

    data = png_bytes(new_figure(2.0, 1.0))
    assert png_size(data) == (220, 110)
    with Image.open(io.BytesIO(data)) as image:
        assert image.size == (220, 110)
    with pytest.raises(ValueError, match="not a PNG"):
        png_size(b"GIF89a" + bytes(20))
