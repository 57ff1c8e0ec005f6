r"""Imports weights of the original release into a deeplab-keras model.

Writes ``<output>.weights.h5`` and ``<output>.config.json``, usable by train / eval / vis /
export and predict (a zoo preset without --output: into the cache, where
``--checkpoint_path=preset:NAME`` finds it).

Examples:
    # A model zoo checkpoint by name: downloaded into the cache ($DEEPLAB_HOME/zoo) the
    # first time and imported there (printing its path), or into --output:
    python scripts/import_weights.py --preset=xception65_coco_voc_trainaug
    python scripts/import_weights.py --input=mobilenetv2_coco_voc_trainaug \
        --output=exp/voc_mnv2.weights.h5
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

import os

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
flags.DEFINE_string("input", None, "The file (tarball, folder or checkpoint prefix) to import, "
                    "or a model zoo name (as --preset).")
flags.DEFINE_string("preset", None, "A model zoo name (xception65_coco_voc_trainaug): its tarball "
                    "is downloaded into the cache ($DEEPLAB_HOME/zoo) the first time, checked "
                    "and imported.")
flags.DEFINE_string("sha256", None, "The tarball's SHA-256, when you know it (the zoo publishes "
                    "none): a download or file with another hash is refused.")
flags.DEFINE_string("output", None, "Output path ending in .weights.h5; default for a zoo "
                    "preset: the cache, whose path is printed.")
flags.DEFINE_string("dataset", None, "Registered data set or dataset.json whose class names "
                    "and colours are kept with the weights (predict and export use them); a "
                    "model-zoo checkpoint's own data set by default.")
FLAGS = flags.FLAGS


def source_of(path: str) -> str:
    """--source read from --input's name."""
    if path.endswith(".tflite"):
        return "tflite"
    if path.endswith(".h5") and not path.endswith(".weights.h5"):
        return "keras_mobilenet_v2"
    return "checkpoint"


def zoo_name(values) -> str | None:
    """The zoo name to fetch: --preset, or an --input that is a bare name (no folder, no
    archive suffix) and not a file here."""
    if values.preset:
        if values.input:
            raise ValueError("give --preset or --input, not both")
        return values.preset
    if not values.input:
        raise ValueError("--input (a file or a model zoo name) or --preset is required")
    from deeplab.weights.presets import close_names, find_preset

    path = values.input
    if os.path.exists(path) or "/" in path or "." in os.path.basename(path):
        return None
    # A zoo name, or a typo of one (get_preset says which it meant); else a missing file.
    return path if find_preset(path) or close_names(path) else None


def main(argv):
    del argv
    from deeplab.model import DeepLab
    from deeplab.runs.store import save_model

    name = zoo_name(FLAGS)
    input_path = FLAGS.input
    if name is not None:
        from deeplab.weights.presets import describe_preset, get_preset
        from deeplab.weights.zoo_cache import cached_model, fetch_archive

        preset = get_preset(name)
        if FLAGS.source not in (None, "checkpoint"):
            raise ValueError(f"--source={FLAGS.source}: a model zoo preset is a TF checkpoint")
        if not FLAGS.output:
            if explicit_model_overrides(FLAGS) or FLAGS.dataset:
                raise ValueError("model flags and --dataset change what is imported: give "
                                 "--output for it (the cache keeps the zoo's model as it is)")
            path = cached_model(preset, file_hash=FLAGS.sha256)
            print(describe_preset(preset, f"preset:{preset.name}"))
            print(f"imported model: {path} and its .config.json")
            return
        input_path = str(fetch_archive(preset, file_hash=FLAGS.sha256))
    elif FLAGS.sha256:
        from deeplab.weights.zoo_cache import parse_sha256, sha256_of

        pinned = parse_sha256(FLAGS.sha256)
        if not os.path.isfile(input_path):
            raise ValueError(f"--sha256 checks a file; --input {input_path} is not one")
        if sha256_of(input_path) != pinned:
            raise ValueError(f"--input {input_path} has SHA-256 {sha256_of(input_path)}, not "
                             f"--sha256 {pinned}")
    if not FLAGS.output:
        raise ValueError("--output is required (a path ending in .weights.h5)")
    source = FLAGS.source or source_of(input_path)
    preset = None
    if source == "tflite":
        from deeplab.weights.tflite_import import import_tflite_weights, infer_model_config

        model = DeepLab(infer_model_config(input_path))
        report = import_tflite_weights(model, input_path)
    elif source == "checkpoint":
        from deeplab.weights.zoo_import import import_zoo_checkpoint

        imported = import_zoo_checkpoint(input_path, explicit_model_overrides(FLAGS))
        model, preset, report = imported.model, imported.preset, imported.report
    else:
        from deeplab.weights.keras_applications import import_keras_mobilenet_v2

        model = DeepLab(model_config_from_flags(FLAGS))
        if FLAGS.model_variant != "mobilenet_v2":
            raise ValueError("--source=keras_mobilenet_v2 needs --model_variant=mobilenet_v2.")
        report = import_keras_mobilenet_v2(model.backbone, input_path)
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
    run_binary("import_weights", main, describe_device=True)


if __name__ == "__main__":
    run()
