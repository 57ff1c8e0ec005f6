"""Exports a trained or imported model as a TF Serving SavedModel.

    python export/export_model.py --checkpoint_path=exp/voc/train/model.weights.h5 \
        --export_path=exp/voc/export/saved_model --inference_scales=0.75,1.0,1.25 \
        --add_flipped_images

Writes ``<export_path>/<version>/`` with the signatures ``serving_default`` (uint8
[1, H, W, 3] → ``semantic_predictions`` int32 [1, H, W], ``semantic_probabilities``),
``serving_encoded`` (JPEG/PNG bytes) and, with --crop_size, ``serving_batch``. The model
config comes from the checkpoint; model flags given here override it (e.g.
--output_stride=8 for denser inference).
"""

from __future__ import annotations

from absl import flags

from deeplab.cli.common import define_checkpoint_flag, define_inference_flags
from deeplab.cli.model_flags import explicit_model_overrides, parse_float_list, parse_int_list
from deeplab.cli.runner import run_binary
from deeplab.export.saved_model import export_saved_model

define_checkpoint_flag("checkpoint_path")
flags.DEFINE_string("export_path", None, "SavedModel base directory (versions inside).")
flags.DEFINE_integer("version", None, "Version folder; default: the next free number.")
flags.DEFINE_multi_string("crop_size", [], "h,w of the batched signature serving_batch "
                          "(the original's --crop_size=513 --crop_size=513 form works).")
define_inference_flags("inference_scales")
flags.DEFINE_integer("min_resize_value", None, "Resize the smaller side to this (in-graph).")
flags.DEFINE_integer("max_resize_value", None, "Cap the larger side at this (in-graph).")
flags.DEFINE_integer("resize_factor", None, "Resized dims become a multiple of this plus 1.")
flags.mark_flags_as_required(["checkpoint_path", "export_path"])
FLAGS = flags.FLAGS


def main(argv):
    del argv
    from deeplab.runs.store import load_model

    model = load_model(FLAGS.checkpoint_path, **explicit_model_overrides(FLAGS))
    crop = parse_int_list(FLAGS.crop_size, "crop_size") or None
    if crop is not None and len(crop) != 2:
        raise ValueError(f"--crop_size takes two values (height, width), got {crop}")
    path = export_saved_model(
        model, FLAGS.export_path, FLAGS.version,
        inference_scales=parse_float_list(FLAGS.inference_scales, "inference_scales"),
        add_flipped_images=FLAGS.add_flipped_images,
        min_resize_value=FLAGS.min_resize_value, max_resize_value=FLAGS.max_resize_value,
        resize_factor=FLAGS.resize_factor, batch_crop_size=crop,
    )
    print(f"exported {path}\n  try: saved_model_cli show --dir {path} --all")


def run():
    """Entry point (the thin script, or a console script)."""
    run_binary("export_model", main)


if __name__ == "__main__":
    run()
