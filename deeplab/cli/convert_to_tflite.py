"""Converts a trained or imported model (or our SavedModel export) to TFLite.

    python export/convert_to_tflite.py --checkpoint_path=exp/voc/train/model.weights.h5 \
        --crop_size=513 --crop_size=513 --quantization=int8 \
        --dataset_dir=data/voc/tfrecord --output_tflite_path=exp/voc/export/voc_int8.tflite

The model takes a fixed [1, h, w, 3] RGB 0-255 image (float32, or uint8/int8 with
--quantization=int8) and outputs int32 class ids [1, h, w] (--output=argmax) or logits
(--output=logits: the GPU delegate has no ARG_MAX). A labels file is written beside it.
"""

from __future__ import annotations

from absl import flags

from deeplab.cli.common import define_checkpoint_flag, define_dataset_flags
from deeplab.cli.model_flags import explicit_model_overrides, parse_int_list
from deeplab.cli.runner import run_binary
from deeplab.export.calibration import record_images
from deeplab.export.saved_model import keras_model_from_saved_model
from deeplab.export.tflite import (
    INFERENCE_TYPES,
    OUTPUTS,
    QUANTIZATIONS,
    convert_to_tflite,
    op_names,
    write_tflite,
)
from deeplab.runs.store import load_model

define_checkpoint_flag("checkpoint_path")
flags.DEFINE_string("saved_model_dir", None, "Or: a SavedModel written by export_model.py.")
flags.DEFINE_string("output_tflite_path", None, "Where the .tflite file is written.")
flags.DEFINE_multi_string("crop_size", ["513", "513"], "Input h,w (--crop_size=513 "
                          "--crop_size=513 as the original, or --crop_size=513,513).")
flags.DEFINE_enum("quantization", "float", list(QUANTIZATIONS), "Weight/activation types.")
flags.DEFINE_enum("inference_type", "uint8", list(INFERENCE_TYPES), "int8 model input type.")
flags.DEFINE_enum("output", "argmax", list(OUTPUTS), "Class ids or logits.")
define_dataset_flags("TFRecords for int8 calibration (and the labels file).")
flags.DEFINE_string("calibration_split", "train", "Split read for calibration.")
flags.DEFINE_integer("calibration_steps", 100, "Calibration images.")
flags.mark_flag_as_required("output_tflite_path")
FLAGS = flags.FLAGS


def main(argv):
    del argv
    if bool(FLAGS.checkpoint_path) == bool(FLAGS.saved_model_dir):
        raise ValueError("give exactly one of --checkpoint_path and --saved_model_dir")
    if FLAGS.checkpoint_path:
        model = load_model(FLAGS.checkpoint_path, **explicit_model_overrides(FLAGS))
    else:
        model = keras_model_from_saved_model(FLAGS.saved_model_dir)
    crop = parse_int_list(FLAGS.crop_size, "crop_size")
    if len(crop) != 2:
        raise ValueError(f"--crop_size takes two values (height, width), got {crop}")
    calibration = None
    class_names = ()
    if FLAGS.dataset_dir or FLAGS.dataset:
        from deeplab.data.descriptor import get_dataset

        descriptor = get_dataset(FLAGS.dataset or FLAGS.dataset_dir)
        class_names = tuple(descriptor.class_names)
    if FLAGS.quantization == "int8":
        if not FLAGS.dataset_dir:
            raise ValueError("--quantization=int8 needs --dataset_dir (calibration images)")
        calibration = record_images(FLAGS.dataset_dir, FLAGS.calibration_split, crop,
                                    FLAGS.calibration_steps, FLAGS.dataset,
                                    model.config.backbone_spec.mean_pixel)
    flatbuffer = convert_to_tflite(model, crop, FLAGS.quantization, FLAGS.output,
                                   calibration, FLAGS.inference_type)
    path = write_tflite(flatbuffer, FLAGS.output_tflite_path, class_names)
    print(f"wrote {path} ({len(flatbuffer) / 1e6:.2f} MB), ops: {', '.join(op_names(flatbuffer))}")


def run():
    """Entry point (the thin script, or a console script)."""
    run_binary("convert_to_tflite", main)


if __name__ == "__main__":
    run()
