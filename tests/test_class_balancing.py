"""Class imbalance: split statistics (converters, dataset_stats), --class_balancing, and the
warning when training collapses to one class."""

from __future__ import annotations

import json
import logging
import types

import numpy as np
import pytest
from shared_runs import run_binary, tiny_config

from deeplab.data.statistics import SplitStatistics

# Three 2x3 labels of classes 0..2 (255: void) and what they hold, counted by hand.
LABELS = [np.array([[0, 0, 1], [255, 1, 1]]), np.array([[2, 2, 255], [255, 0, 0]]),
          np.array([[0, 0, 0], [0, 0, 2]])]
BY_HAND = {"class_pixels": [9, 3, 3], "images_with_class": [3, 1, 2],
           # each image's labelled pixels (5, 4, 6) summed over the images holding the class
           "pixels_of_images_with_class": [15, 5, 10],
           "void_pixels": 3, "invalid_pixels": 0, "num_images": 3}
# 19 of 20 labelled pixels are class 0: a dominated split.
DOMINATED = [np.array([[0] * 10, [0] * 9 + [1]])]


def _samples(labels):
    from deeplab.data.writer import Sample

    return [Sample(f"img{k}", np.zeros((*label.shape, 3), np.uint8), label.astype(np.uint8),
                   f"img{k}.png") for k, label in enumerate(labels)]


def _build(directory, num_classes=3):
    from deeplab.data.descriptor import DatasetDescriptor
    from deeplab.data.writer import Task, build_records

    descriptor = DatasetDescriptor("counted", {}, num_classes, 255,
                                   ("background", "disc", "square", "cross")[:num_classes])
    build_records(str(directory), descriptor,
                  {"train": [Task(_samples, (LABELS,), 3)],
                   "val": [Task(_samples, (DOMINATED,), 1)]}, num_shards=1)
    return descriptor


def test_converter_and_records_statistics_match_counts_by_hand(tmp_path, caplog):
    from deeplab.data.statistics import count_split, stored_statistics

    with caplog.at_level(logging.WARNING, logger="deeplab.data"):
        _build(tmp_path)
    warnings = [r.getMessage() for r in caplog.records if "of the labelled pixels" in r.message]
    assert warnings == ["split 'val': 95.0% of the labelled pixels are 'background': a model "
                        "can score well by predicting it everywhere and never learn the other "
                        "classes; train with --class_balancing=median_frequency "
                        "(deeplab-train) to weight the rare classes up"]
    stored = json.loads((tmp_path / "dataset.json").read_text())["splits"]["train"]
    assert stored["statistics"] == BY_HAND and stored["void_fraction"] == 0.166667
    assert stored_statistics(str(tmp_path), "train").to_json() == BY_HAND
    # Counted again from the records alone, as for the original's records.
    lines = []
    assert count_split(str(tmp_path), "train", 3, 255, lines.append).to_json() == BY_HAND
    assert lines[-1].startswith("counting classes of train: 3/3 images (100.0%)")
    # ADE20K's ignore label is class 0: its pixels are void, not class 0's.
    stats = SplitStatistics.empty(3)
    stats.add(np.bincount([0, 0, 1, 2, 7], minlength=256), ignore_label=0)
    assert (stats.class_pixels, stats.void_pixels, stats.invalid_pixels) == ([0, 1, 1], 2, 1)


def test_dataset_stats_binary_on_records_without_dataset_json(tmp_path):
    """The original's records (no dataset.json, --dataset names the classes): a table, a
    chart of the size it states, the dominated split's warning, the counts kept."""
    from PIL import Image

    _build(tmp_path / "records")
    (tmp_path / "records" / "dataset.json").unlink()
    result = run_binary("deeplab.cli.dataset_stats", f"--dataset_dir={tmp_path / 'records'}",
                        "--dataset=synthetic")
    assert result.returncode == 0, result.stderr[-2000:]
    out = result.stdout.splitlines()
    assert out[-1] == f"counts kept in {tmp_path / 'records' / 'dataset.json'}"
    rows = {line.split()[0]: line.split()[1:] for line in out if line.split()}
    assert rows["background"] == ["9", "60.00%", "3", "19", "95.00%", "1"]
    assert rows["cross"] == ["0", "0.00%", "0", "0", "0.00%", "0"]
    assert "train: 3 images, 15 labelled pixels, 3 void (16.7%)" in out
    assert any(line.startswith("warning: split 'val': 95.0% of the labelled pixels are "
                               "'background'") for line in out)
    chart = out[-2].removeprefix("chart: ")
    path, size = chart.rsplit(" (", 1)
    with Image.open(path) as image:
        assert image.format == "PNG" and f"{image.size[0]}x{image.size[1]})" == size
    written = json.loads((tmp_path / "records" / "dataset.json").read_text())
    assert written["name"] == "synthetic" and written["num_classes"] == 6
    assert written["splits"]["train"]["statistics"]["class_pixels"] == [9, 3, 3, 0, 0, 0]
    assert written["splits"]["val"]["num_examples"] == 1


def test_balancing_weights_match_the_formula_by_hand():
    from deeplab.training.class_balancing import balancing_weights

    stats = SplitStatistics(class_pixels=[80, 10, 6, 0], images_with_class=[9, 4, 3, 0],
                            pixels_of_images_with_class=[100, 40, 60, 0])
    # median frequency: f = 80/100, 10/40, 6/60 = 0.8, 0.25, 0.1; median 0.25; w = 0.25 / f
    assert np.allclose(balancing_weights(stats, "median_frequency"), [0.3125, 1.0, 2.5, 0.0])
    # inverse frequency: 1 / (3 classes * share of the 96 pixels)
    assert np.allclose(balancing_weights(stats, "inverse_frequency"),
                       [96 / 240, 96 / 30, 96 / 18, 0.0])
    with pytest.raises(ValueError, match="no labelled pixels"):
        balancing_weights(SplitStatistics.empty(2), "median_frequency")


def test_class_balancing_counts_missing_statistics_names_absent_classes(tmp_path):
    from deeplab.data.descriptor import get_dataset
    from deeplab.training.class_balancing import resolve_class_balancing

    _build(tmp_path, num_classes=4)  # "cross" has no pixel
    data = json.loads((tmp_path / "dataset.json").read_text())
    del data["splits"]["train"]["statistics"]  # as a dataset.json of an earlier release
    (tmp_path / "dataset.json").write_text(json.dumps(data))
    config = types.SimpleNamespace(class_balancing="median_frequency", label_weights=1.0,
                                   dataset_dir=str(tmp_path), train_split="train")
    lines = []
    weights = resolve_class_balancing(config, get_dataset(str(tmp_path)), lines.append)
    # f = 9/15, 3/5, 3/10 = 0.6, 0.6, 0.3: median 0.6
    assert np.allclose(weights, [1.0, 1.0, 2.0, 0.0])
    assert lines[0].startswith("--class_balancing: counting the classes of split 'train'")
    assert lines[-1] == "weight 0 for the classes with no pixel in split 'train': cross"
    assert "  square                    20.000% of pixels  weight 2" in lines[-2]
    stored = json.loads((tmp_path / "dataset.json").read_text())["splits"]["train"]
    assert stored["statistics"]["class_pixels"] == [9, 3, 3, 0]
    lines.clear()
    config.label_weights = (1.0, 2.0, 3.0, 4.0)
    assert resolve_class_balancing(config, get_dataset(str(tmp_path)), lines.append) is None
    assert lines == ["--label_weights given: using them, not "
                     "--class_balancing=median_frequency"]


def test_class_balancing_weights_go_into_the_run_config(tiny_data, tmp_path):
    import tensorflow as tf

    from deeplab.training.class_balancing import balancing_weights
    from deeplab.training.trainer import Trainer

    # The training split's class pixels, counted here from the records' labels.
    pixels = np.zeros(6)
    for path in sorted(tiny_data.glob("train-*")):
        for record in tf.data.TFRecordDataset(str(path)):
            feature = tf.train.Example.FromString(record.numpy()).features.feature
            label = tf.io.decode_png(
                feature["image/segmentation/class/encoded"].bytes_list.value[0]).numpy()
            pixels += np.bincount(label.ravel(), minlength=256)[:6]
    lines = []
    trainer = Trainer(tiny_config(tiny_data, tmp_path, class_balancing="inverse_frequency"),
                      log=lines.append)
    trainer._prepare()
    saved = json.loads((tmp_path / "config.json").read_text())["train"]
    assert saved["class_balancing"] == "inverse_frequency"
    assert np.allclose(saved["label_weights"], pixels.sum() / (6 * pixels))
    assert np.allclose(saved["label_weights"],
                       balancing_weights(SplitStatistics.from_json(json.loads(
                           (tiny_data / "dataset.json").read_text())["splits"]["train"][
                               "statistics"]), "inverse_frequency"))
    assert any(line.startswith("--class_balancing=inverse_frequency: loss weights")
               for line in lines)


def _watch(strategy=None):
    import tensorflow as tf

    from deeplab.training.safeguards import CollapseWatch

    with (strategy or tf.distribute.get_strategy()).scope():
        return CollapseWatch(3, training_steps=100)


def _logits(classes):
    """[1, 1, n, 3] logits whose argmax is ``classes``."""
    import tensorflow as tf

    return tf.one_hot([[classes]], 3) * 5.0


def test_collapse_watch_counts_labelled_pixels_and_warns_once_after_the_warm_up():
    import tensorflow as tf

    watch = _watch()
    strategy = tf.distribute.get_strategy()
    labels = tf.constant([[[[0], [1], [255], [2]]]])
    watch.count(_logits([2, 2, 0, 1]), labels, 255)  # the void pixel is not counted
    assert np.asarray(watch.counts).tolist() == [0, 1, 2]
    assert watch.check(50, strategy) is None  # the warm-up (100 steps) ignores it
    assert np.asarray(watch.counts).tolist() == [0, 0, 0]  # read and reset

    def interval(classes):
        watch.count(_logits(classes), tf.zeros([1, 1, len(classes), 1], tf.int32), 255)

    seen = []
    for step, classes in enumerate([[1] * 200,                     # collapsed once
                                    [1] * 198 + [0, 2],            # 99.0%: not over 99%
                                    [1] * 200, [2] * 200,          # another class: streak anew
                                    [2] * 1000, [2] * 999 + [0],   # 3 in a row: warning
                                    [2] * 200, [2] * 200]):        # only once
        interval(classes)
        seen.append(watch.check(110 + step, strategy))
    assert seen[:5] == [None] * 5 and seen[6:] == [None, None]
    assert seen[5][0] == 2 and seen[5][1] == pytest.approx(0.999)


def test_collapse_watch_sums_the_replicas_of_a_strategy():
    import tensorflow as tf

    strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
    watch = _watch(strategy)

    @tf.function
    def step():
        strategy.run(lambda: watch.count(_logits([1, 1, 0]), tf.zeros([1, 1, 3, 1], tf.int32),
                                         255))

    step()
    step()
    parts = strategy.experimental_local_results(watch.counts)
    assert sum(np.asarray(p) for p in parts).tolist() == [2, 4, 0]
    watch.count(_logits([1]), tf.zeros([1, 1, 1, 1], tf.int32), 255)  # outside run: skipped
    assert watch.check(150, strategy) is None
    assert sum(np.asarray(p) for p in parts).tolist() == [0, 0, 0]


@pytest.mark.slow
def test_collapse_warning_fires_once_when_the_model_predicts_one_class(tiny_data, tmp_path):
    """A model whose logits always pick "square" (a bias of 100): the trainer prints one
    warning that names it and points to --class_balancing (trains: slow tier)."""
    from deeplab.training.trainer import Trainer

    lines = []
    trainer = Trainer(tiny_config(tiny_data, tmp_path, training_number_of_steps=5, log_steps=1,
                                  adam_learning_rate=1e-6), log=lines.append)
    bias = trainer.model.get_layer("logits.semantic").weights[-1]
    bias.assign(np.eye(6, dtype=np.float32)[2] * 100.0)
    trainer.collapse_watch.warmup_steps = 0
    trainer.train()
    warnings = [line for line in lines if "collapsed to one class" in line]
    assert warnings == [
        "warning: the model has collapsed to one class: in each of the last 3 log intervals "
        "(up to step 3) all of the pixels it predicted were 'square'. On an imbalanced data "
        "set a model keeps a low loss this way; train with --class_balancing=median_frequency "
        "(or set --label_weights), and see python datasets/dataset_stats.py for the class "
        "counts"]
    assert lines.index(warnings[0]) == [i for i, line in enumerate(lines)
                                        if line.startswith("step 3/5")][0] + 1


def test_the_warm_up_is_the_slow_start_a_tenth_of_the_run_or_100_steps():
    import tensorflow as tf

    from deeplab.training.safeguards import CollapseWatch

    assert _watch().warmup_steps == 100
    with tf.distribute.get_strategy().scope():
        assert CollapseWatch(3, 30000, slow_start_step=500).warmup_steps == 3000
        assert CollapseWatch(3, 300, slow_start_step=500).warmup_steps == 500
