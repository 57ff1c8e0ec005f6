r"""Converts a trained or imported model, our SavedModel export or a frozen graph to TFLite.

    python export/convert_to_tflite.py --checkpoint_path=exp/voc/train/model.weights.h5 \
        --crop_size=513 --crop_size=513 --quantization=int8 \
        --dataset_dir=data/voc/tfrecord --output_tflite_path=exp/voc/export/voc_int8.tflite
    python export/convert_to_tflite.py \
        --quantized_graph_def_path=exp/voc/export/frozen_inference_graph.pb \
        --input_tensor_name=ImageTensor:0 --output_tensor_name=ArgMax:0 --crop_size=513 \
        --crop_size=513 --output_tflite_path=voc.tflite --test_image_path=photo.jpg

The source is exactly one of --checkpoint_path, --saved_model_dir and
--quantized_graph_def_path. From a model, the TFLite model takes a fixed [1, h, w, 3] RGB
0-255 image (float32, or uint8/int8 with --quantization=int8) and outputs int32 class ids
[1, h, w] (--output=argmax) or logits (--output=logits: the GPU delegate has no ARG_MAX).
A model trained with --quantize_delay_step converts to int8 with the ranges it learned
(no --dataset_dir needed); post-training int8 calibrates on --dataset_dir's images.

A frozen GraphDef (--quantized_graph_def_path, the original's flag) is cut between
--input_tensor_name and --output_tensor_name, as the original's converter did. Our
``frozen_inference_graph.pb`` (export_model --export_path=....pb) converts from
``ImageTensor:0`` (the default when the graph has it; uint8 input, its height and width from
--crop_size, preprocessing inside) to ``ArgMax:0`` or ``SemanticPredictions:0`` (int32 class
ids) or ``SemanticProbabilities:0``, as a float model (--quantization=float16 or dynamic
shrink it). A graph with FakeQuant nodes (the original's quantized export, e.g.
--input_tensor_name=MobilenetV2/MobilenetV2/input:0) becomes a uint8 model with input stats
(127.5, 127.5), as the original made it.

--test_image_path runs the converted model on an image (resized to its input) and prints the
output's shape, the classes found and the share of pixels that agree with the source model.
A labels file is written beside the model when --dataset or --dataset_dir names the classes.
"""

from __future__ import annotations

from absl import flags

from deeplab.cli.common import define_checkpoint_flag, define_dataset_flags
from deeplab.cli.model_flags import explicit_model_overrides, parse_int_list
from deeplab.cli.runner import run_binary
from deeplab.export.tflite import INFERENCE_TYPES, OUTPUTS, QUANTIZATIONS

define_checkpoint_flag("checkpoint_path")
flags.DEFINE_string("saved_model_dir", None, "Or: a SavedModel written by export_model.py.")
flags.DEFINE_string("quantized_graph_def_path", None, "Or: a frozen GraphDef (.pb), the "
                    "original's quantized export or our frozen_inference_graph.pb; converted "
                    "between --input_tensor_name and --output_tensor_name.")
flags.DEFINE_string("output_tflite_path", None, "Where the .tflite file is written (optional "
                    "with --test_image_path, as in the original).")
flags.DEFINE_string("input_tensor_name", None, "With --quantized_graph_def_path: the model's "
                    "input tensor (ImageTensor:0 by default when the graph has it; the "
                    "original's quantize.md used MobilenetV2/MobilenetV2/input:0).")
flags.DEFINE_string("output_tensor_name", "ArgMax:0", "With --quantized_graph_def_path: the "
                    "model's output tensor (ArgMax:0: class ids, in the original's graphs "
                    "and ours; SemanticProbabilities:0 in ours gives probabilities).")
flags.DEFINE_string("test_image_path", None, "After converting, run the TFLite model on this "
                    "image and print the output's shape, the classes found and the pixels "
                    "that agree with the source model.")
flags.DEFINE_multi_string("crop_size", ["513", "513"], "Input h,w (--crop_size=513 "
                          "--crop_size=513 as the original, or --crop_size=513,513); for a "
                          "graph, the size of an input whose height and width are unknown.")
flags.DEFINE_enum("quantization", "float", list(QUANTIZATIONS), "Weight/activation types.")
flags.DEFINE_enum("inference_type", "uint8", list(INFERENCE_TYPES), "int8 model input type.")
flags.DEFINE_enum("output", "argmax", list(OUTPUTS), "Class ids or logits (from a model; a "
                  "graph's output is --output_tensor_name).")
define_dataset_flags("TFRecords for int8 calibration (and the labels file).")
flags.DEFINE_string("calibration_split", "train", "Split read for calibration.")
flags.DEFINE_integer("calibration_steps", 100, "Calibration images.")
FLAGS = flags.FLAGS

SOURCES = ("checkpoint_path", "saved_model_dir", "quantized_graph_def_path")
GRAPH_FLAGS = ("input_tensor_name", "output_tensor_name")
MODEL_FLAGS = ("output", "inference_type")


def _check_flags() -> None:
    if sum(bool(FLAGS[name].value) for name in SOURCES) != 1:
        raise ValueError("give exactly one of --checkpoint_path, --saved_model_dir and "
                         "--quantized_graph_def_path")
    if not (FLAGS.output_tflite_path or FLAGS.test_image_path):
        raise ValueError("give --output_tflite_path (or only --test_image_path, to test the "
                         "conversion)")
    if not FLAGS.quantized_graph_def_path:
        for name in GRAPH_FLAGS:
            if FLAGS[name].present:
                raise ValueError(f"--{name} cuts a frozen graph: it needs "
                                 "--quantized_graph_def_path")
    else:
        for name in MODEL_FLAGS:
            if FLAGS[name].present:
                raise ValueError(f"--{name} applies to a model (--checkpoint_path, "
                                 "--saved_model_dir); a graph's output is --output_tensor_name")


def _convert_graph(crop):
    """(flatbuffer, reference for --test_image_path) from --quantized_graph_def_path."""
    from deeplab.export.frozen_graph import default_input_tensor, graph_reference, load_graph_def
    from deeplab.export.tflite import convert_frozen_graph

    path = FLAGS.quantized_graph_def_path
    graph_def = load_graph_def(path)
    input_name = default_input_tensor(graph_def, FLAGS.input_tensor_name, path)
    flatbuffer = convert_frozen_graph(graph_def, input_name, FLAGS.output_tensor_name, crop,
                                      FLAGS.quantization, source=path)
    return flatbuffer, graph_reference(graph_def, input_name, FLAGS.output_tensor_name)


def _names_flag() -> tuple[str | None, str]:
    """(where the class names come from, its flag): --dataset, else --dataset_dir."""
    if FLAGS.dataset:
        return FLAGS.dataset, "--dataset"
    return FLAGS.dataset_dir, "--dataset_dir"


def _convert_model(crop):
    """(flatbuffer, reference for --test_image_path, class names) from a checkpoint or our
    SavedModel."""
    import numpy as np

    from deeplab.export.calibration import record_images
    from deeplab.export.saved_model import keras_model_from_saved_model
    from deeplab.export.tflite import convert_to_tflite
    from deeplab.inference.labels import labels_to_keep
    from deeplab.quantization import quantizers
    from deeplab.runs.store import load_model

    if FLAGS.checkpoint_path:
        from deeplab.weights.zoo_cache import resolve_model_path  # preset:NAME
        FLAGS.checkpoint_path = resolve_model_path(FLAGS.checkpoint_path)
        # As export_model: the crop sizes the image pooling (a model trained at 65 converted
        # at 50,37 pools its whole 4x3 map, not a 5x5 window that no longer fits).
        model = load_model(FLAGS.checkpoint_path, **explicit_model_overrides(FLAGS, crop))
    else:
        model = keras_model_from_saved_model(FLAGS.saved_model_dir)
    # Checked before the conversion: names for another class count are refused.
    labels = labels_to_keep(FLAGS.checkpoint_path or FLAGS.saved_model_dir,
                            model.config.num_classes, *_names_flag())
    calibration = None
    # A quantization-aware model brings its own ranges: no calibration images.
    if FLAGS.quantization == "int8" and not quantizers(model):
        if not FLAGS.dataset_dir:
            raise ValueError("--quantization=int8 needs --dataset_dir (calibration images), "
                             "unless the model was trained with --quantize_delay_step")
        calibration = record_images(FLAGS.dataset_dir, FLAGS.calibration_split, crop,
                                    FLAGS.calibration_steps, FLAGS.dataset,
                                    model.config.backbone_spec.mean_pixel)
    flatbuffer = convert_to_tflite(model, crop, FLAGS.quantization, FLAGS.output,
                                   calibration, FLAGS.inference_type)

    def reference(image):
        return np.asarray(model(image.astype(np.float32), training=False))

    return flatbuffer, reference, labels


def main(argv):
    del argv
    from deeplab.export.tflite import (
        check_on_image,
        check_tflite_class_names,
        op_names,
        write_tflite,
    )

    _check_flags()
    crop = parse_int_list(FLAGS.crop_size, "crop_size")
    if len(crop) != 2:
        raise ValueError(f"--crop_size takes two values (height, width), got {crop}")
    if FLAGS.quantized_graph_def_path:
        from deeplab.data.descriptor import get_dataset
        from deeplab.inference.labels import ClassLabels

        flatbuffer, reference = _convert_graph(crop)
        source = "the frozen graph"
        dataset, flag = _names_flag()
        labels = (ClassLabels.of_dataset(get_dataset(dataset), f"{flag} {dataset}")
                  if dataset else None)
        if labels:  # against the classes the converted graph predicts
            check_tflite_class_names(flatbuffer, labels.names, labels.source)
    else:
        flatbuffer, reference, labels = _convert_model(crop)
        source = "the Keras model"
    class_names = labels.names if labels else ()
    if FLAGS.output_tflite_path:
        path = write_tflite(flatbuffer, FLAGS.output_tflite_path, class_names,
                            labels.source if labels else "")
        print(f"wrote {path} ({len(flatbuffer) / 1e6:.2f} MB), ops: "
              f"{', '.join(op_names(flatbuffer))}")
    if FLAGS.test_image_path:
        print(check_on_image(flatbuffer, FLAGS.test_image_path, reference, source, class_names))


def run():
    """Entry point (the thin script, or a console script)."""
    run_binary("convert_to_tflite", main, describe_device=True)


if __name__ == "__main__":
    run()
