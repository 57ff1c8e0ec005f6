r"""Imports weights of the original release into a deeplab-keras model.

Writes ``<output>.weights.h5`` and ``<output>.config.json``, usable by train / eval / vis /
export and predict.

Examples:
    # The original's TFLite files (the config is read from the file):
    python scripts/import_weights.py --source=tflite \
        --input=deeplabv3_mnv2_pascal_quant.tflite --output=exp/voc_mnv2.weights.h5
    # A model-zoo TF1 checkpoint, with the model flags of that checkpoint:
    python scripts/import_weights.py --source=checkpoint --input=train_fine/model.ckpt \
        --model_variant=xception_65 --atrous_rates=6,12,18 --decoder_output_stride=4 \
        --num_classes=19 --output=exp/cityscapes_x65.weights.h5
    # keras.applications MobileNetV2 ImageNet weights (a local .h5) as backbone init:
    python scripts/import_weights.py --source=keras_mobilenet_v2 \
        --input=mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5 \
        --output=exp/mnv2_imagenet.weights.h5
"""

from __future__ import annotations

from absl import flags

from deeplab.cli.model_flags import define_model_flags, model_config_from_flags
from deeplab.cli.runner import run_binary
from deeplab.model import DeepLab
from deeplab.runs.store import save_model
from deeplab.weights.checkpoint_import import import_tf1_checkpoint
from deeplab.weights.keras_applications import import_keras_mobilenet_v2
from deeplab.weights.tflite_import import import_tflite_weights, infer_model_config

define_model_flags()
flags.DEFINE_enum("source", None, ["tflite", "checkpoint", "keras_mobilenet_v2"],
                  "What --input is.")
flags.DEFINE_string("input", None, "The file (or checkpoint prefix) to import.")
flags.DEFINE_string("output", None, "Output path ending in .weights.h5.")
flags.DEFINE_string("dataset", None, "Registered data set or dataset.json whose class names "
                    "and colours are kept with the weights (predict and export use them).")
flags.mark_flags_as_required(["source", "input", "output"])
FLAGS = flags.FLAGS


def main(argv):
    del argv
    if FLAGS.source == "tflite":
        config = infer_model_config(FLAGS.input)
        model = DeepLab(config)
        report = import_tflite_weights(model, FLAGS.input)
    else:
        model = DeepLab(model_config_from_flags(FLAGS))
        if FLAGS.source == "checkpoint":
            report = import_tf1_checkpoint(model, FLAGS.input)
        else:
            if FLAGS.model_variant != "mobilenet_v2":
                raise ValueError("--source=keras_mobilenet_v2 needs --model_variant="
                                 "mobilenet_v2.")
            report = import_keras_mobilenet_v2(model.backbone, FLAGS.input)
    labels = None
    if FLAGS.dataset:
        from deeplab.data.descriptor import get_dataset
        from deeplab.inference.labels import ClassLabels

        descriptor = get_dataset(FLAGS.dataset)
        if descriptor.num_classes != model.config.num_classes:
            raise ValueError(f"--dataset {FLAGS.dataset} has {descriptor.num_classes} classes, "
                             f"the imported model {model.config.num_classes}")
        labels = ClassLabels.of_dataset(descriptor).to_json()
    path = save_model(model, FLAGS.output, labels)
    print(report.summary())
    print(f"wrote {path} and its .config.json")


def run():
    """Entry point (the thin script, or a console script)."""
    run_binary("import_weights", main)


if __name__ == "__main__":
    run()
