r"""Imports weights of the original release into a deeplab-keras model.

Writes ``<output>.weights.h5`` and ``<output>.config.json``, usable by train / eval / vis /
export and predict.

Examples:
    # A model-zoo tarball (or its extracted folder, or model.ckpt prefix): recognised by its
    # name, so no model flags are needed:
    python scripts/import_weights.py --input=deeplabv3_pascal_train_aug_2018_01_04.tar.gz \
        --output=exp/voc_x65.weights.h5
    # The original's TFLite files (the config is read from the file):
    python scripts/import_weights.py --input=deeplabv3_mnv2_pascal_quant.tflite \
        --output=exp/voc_mnv2.weights.h5
    # A TF1 checkpoint by another name: the model is read from its variables; the ASPP
    # rates, which they do not hold, are asked for:
    python scripts/import_weights.py --input=train_fine/model.ckpt --atrous_rates=6,12,18 \
        --output=exp/cityscapes_x65.weights.h5
    # keras.applications MobileNetV2 ImageNet weights (a local .h5) as backbone init:
    python scripts/import_weights.py --source=keras_mobilenet_v2 \
        --input=mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5 \
        --output=exp/mnv2_imagenet.weights.h5
"""

from __future__ import annotations

from absl import flags

from deeplab.cli.model_flags import (
    define_model_flags,
    explicit_model_overrides,
    model_config_from_flags,
)
from deeplab.cli.runner import run_binary

define_model_flags()
flags.DEFINE_enum("source", None, ["tflite", "checkpoint", "keras_mobilenet_v2"],
                  "What --input is; by default read from it: .tflite, a .h5 (keras "
                  "MobileNetV2), else a TF1 checkpoint (a model-zoo tarball, its folder or a "
                  "prefix).")
flags.DEFINE_string("input", None, "The file (tarball, folder or checkpoint prefix) to import.")
flags.DEFINE_string("output", None, "Output path ending in .weights.h5.")
flags.DEFINE_string("dataset", None, "Registered data set or dataset.json whose class names "
                    "and colours are kept with the weights (predict and export use them); a "
                    "model-zoo checkpoint's own data set by default.")
flags.mark_flags_as_required(["input", "output"])
FLAGS = flags.FLAGS


def source_of(path: str) -> str:
    """--source read from --input's name."""
    if path.endswith(".tflite"):
        return "tflite"
    if path.endswith(".h5") and not path.endswith(".weights.h5"):
        return "keras_mobilenet_v2"
    return "checkpoint"


def main(argv):
    del argv
    from deeplab.model import DeepLab
    from deeplab.runs.store import save_model

    source = FLAGS.source or source_of(FLAGS.input)
    preset = None
    if source == "tflite":
        from deeplab.weights.tflite_import import import_tflite_weights, infer_model_config

        model = DeepLab(infer_model_config(FLAGS.input))
        report = import_tflite_weights(model, FLAGS.input)
    elif source == "checkpoint":
        from deeplab.weights.zoo_import import import_zoo_checkpoint

        imported = import_zoo_checkpoint(FLAGS.input, explicit_model_overrides(FLAGS))
        model, preset, report = imported.model, imported.preset, imported.report
    else:
        from deeplab.weights.keras_applications import import_keras_mobilenet_v2

        model = DeepLab(model_config_from_flags(FLAGS))
        if FLAGS.model_variant != "mobilenet_v2":
            raise ValueError("--source=keras_mobilenet_v2 needs --model_variant=mobilenet_v2.")
        report = import_keras_mobilenet_v2(model.backbone, FLAGS.input)
    labels = None
    dataset = FLAGS.dataset or (preset.dataset if preset else None)
    if dataset:
        from deeplab.data.descriptor import get_dataset
        from deeplab.inference.labels import ClassLabels

        descriptor = get_dataset(dataset)
        if descriptor.num_classes != model.config.num_classes:
            raise ValueError(f"--dataset {dataset} has {descriptor.num_classes} classes, "
                             f"the imported model {model.config.num_classes}")
        labels = ClassLabels.of_dataset(descriptor).to_json()
    path = save_model(model, FLAGS.output, labels, preset.name if preset else None)
    print(report.summary())
    if preset is not None:
        from deeplab.weights.presets import describe_preset

        print(describe_preset(preset, path))
    print(f"wrote {path} and its .config.json")


def run():
    """Entry point (the thin script, or a console script)."""
    run_binary("import_weights", main)


if __name__ == "__main__":
    run()
