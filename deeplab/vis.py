"""Writes colour predictions and overlays for a split (``deeplab-vis``).

    deeplab-vis --checkpoint_dir=exp/synthetic/train --dataset_dir=data/synthetic \
        --vis_logdir=exp/synthetic/vis --also_save_raw_predictions

Outputs as the original: ``segmentation_results/%06d_image.png`` and
``%06d_prediction.png`` (colour), plus ``%06d_overlay.png`` (image, mask and a legend);
with --also_save_raw_predictions, ``raw_segmentation_results/<image name>.png`` holding
class ids (Cityscapes: evaluation ids, for the official scripts).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
from absl import app, flags

from deeplab.cli.model_flags import (
    define_model_flags,
    explicit_model_overrides,
    parse_float_list,
)
from deeplab.colormap import COLORMAPS, label_to_color_image

# vis.py's _CITYSCAPES_TRAIN_ID_TO_EVAL_ID.
CITYSCAPES_TRAIN_ID_TO_EVAL_ID = (7, 8, 11, 12, 13, 17, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28,
                                  31, 32, 33)

define_model_flags()
flags.DEFINE_string("checkpoint_dir", None, "Training directory, ckpt-N prefix or .weights.h5.")
flags.DEFINE_string("vis_logdir", None, "Where the pictures go.")
flags.DEFINE_string("dataset_dir", None, "Directory of <split>-*.tfrecord shards.")
flags.DEFINE_string("dataset", None, "Dataset name or dataset.json (default: --dataset_dir's).")
flags.DEFINE_string("vis_split", "val", "Split to visualise.")
flags.DEFINE_enum("colormap_type", None, sorted(COLORMAPS),
                  "Colormap; default: the dataset's.")
flags.DEFINE_boolean("also_save_raw_predictions", False, "Also write class-id PNGs.")
flags.DEFINE_multi_string("eval_scales", ["1.0"], "Inference scales.")
flags.DEFINE_boolean("add_flipped_images", False, "Also average flipped inputs.")
flags.DEFINE_integer("max_number_of_images", None, "Visualise at most this many images.")
FLAGS = flags.FLAGS


def cityscapes_eval_ids(labels: np.ndarray) -> np.ndarray:
    """Train ids 0..18 → the official evaluation ids; other values unchanged."""
    table = np.arange(256)
    table[: len(CITYSCAPES_TRAIN_ID_TO_EVAL_ID)] = CITYSCAPES_TRAIN_ID_TO_EVAL_ID
    return table[labels]


def visualize(model, batches, vis_logdir: str, colormap: str, class_names, raw: bool,
              eval_scales=(1.0,), add_flipped_images=False, max_images=None) -> int:
    """Writes the pictures for every image of ``batches``; returns the count."""
    from deeplab.evaluation import Evaluator
    from deeplab.visualize import overlay, write_png

    results = Path(vis_logdir) / "segmentation_results"
    raw_results = Path(vis_logdir) / "raw_segmentation_results"
    results.mkdir(parents=True, exist_ok=True)
    if raw:
        raw_results.mkdir(parents=True, exist_ok=True)

    def save(index, batch, i, prediction):
        h, w = prediction.shape
        image = np.asarray(batch["image"][i, :h, :w]).round().astype(np.uint8)
        write_png(results / f"{index:06d}_image.png", image)
        write_png(results / f"{index:06d}_prediction.png",
                  label_to_color_image(prediction, colormap))
        write_png(results / f"{index:06d}_overlay.png",
                  overlay(image, prediction, colormap, 0.5, class_names))
        if raw:
            name = batch["image_name"][i].numpy().decode() or f"{index:06d}"
            ids = cityscapes_eval_ids(prediction) if colormap == "cityscapes" else prediction
            write_png(raw_results / f"{os.path.basename(name)}.png", ids.astype(np.uint8))

    evaluator = Evaluator(model, eval_scales, add_flipped_images)
    counter = {"n": 0}

    def on_prediction(index, batch, i, prediction):
        save(index, batch, i, prediction)
        counter["n"] = index + 1

    evaluator.run(batches, ignore_label=255, max_images=max_images,
                  on_prediction=on_prediction)
    return counter["n"]


def main(argv):
    del argv
    from deeplab.cli.common import check_num_classes, dataset_from_flags, require
    from deeplab.data.errors import DataError
    from deeplab.data.pipeline import PreprocessConfig, make_dataset
    from deeplab.weights.store import load_model

    try:
        require(FLAGS, "checkpoint_dir", "vis_logdir", "dataset_dir")
        dataset_name, descriptor = dataset_from_flags(FLAGS)
        model = load_model(FLAGS.checkpoint_dir, **explicit_model_overrides(FLAGS))
        check_num_classes(model, descriptor, FLAGS.checkpoint_dir)
        batches = make_dataset(FLAGS.dataset_dir, FLAGS.vis_split, 1, is_training=False,
                               config=PreprocessConfig(crop_size=None), dataset=dataset_name,
                               with_labels=False)
        count = visualize(model, batches, FLAGS.vis_logdir,
                          FLAGS.colormap_type or descriptor.colormap, descriptor.class_names,
                          FLAGS.also_save_raw_predictions,
                          parse_float_list(FLAGS.eval_scales, "eval_scales"),
                          FLAGS.add_flipped_images, FLAGS.max_number_of_images)
    except (ValueError, FileNotFoundError, DataError) as error:
        sys.exit(f"deeplab-vis: {error}")
    print(f"wrote {count} results to {Path(FLAGS.vis_logdir) / 'segmentation_results'}")


def run():
    """Console-script entry point."""
    app.run(main)


if __name__ == "__main__":
    run()
