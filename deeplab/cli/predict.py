r"""Segments image files, a folder or a video with a trained or imported model.

    deeplab-predict --checkpoint_path=exp/voc_mnv2.weights.h5 --input=photo.jpg --output_dir=out
    deeplab-predict --checkpoint_path=deeplabv3_mnv2_pascal_quant.tflite --input=photos/ \
        --output_dir=out
    deeplab-predict --checkpoint_path=exp/export/saved_model --input=clip.mp4 --output_dir=out

For each image it writes ``<name>_overlay.png`` (photo + colour mask + legend),
``<name>_mask.png`` (raw class ids) and prints the classes found with their pixel share.
Images are resized to fit ``--max_size`` (the original demo's 513) and predictions are
brought back to the image's own size.
"""

from __future__ import annotations

import sys
from pathlib import Path

from absl import flags

from deeplab.cli.common import CHECKPOINT_HELP, define_checkpoint_flag
from deeplab.cli.runner import run_binary

define_checkpoint_flag("checkpoint_path", CHECKPOINT_HELP + ", or a .tflite file or a SavedModel",
                       aliases=("model",), model_flags=False)
flags.DEFINE_multi_string("input", None, "Image files, videos, or folders of them.")
flags.DEFINE_string("output_dir", None, "Where results are written.")
flags.DEFINE_string("dataset", None,
                    "Registered dataset name or dataset.json path, for class names and colours "
                    "(default: those stored with the model; its class count must match).")
flags.DEFINE_integer("max_size", 513, "Longer side of the image fed to the model (the "
                     "original demo's 513).", lower_bound=33)
flags.DEFINE_float("alpha", 0.5, "Opacity of the colour mask in overlays.")
flags.DEFINE_string("tflite_input_range", "0,255",
                    "Value range of a float TFLite input: 0,255 (ours) or -1,1 (original GPU).")
flags.DEFINE_boolean("also_save_color_mask", False, "Also write <name>_color.png.")
FLAGS = flags.FLAGS


def main(argv):
    del argv
    from deeplab.cli.common import require
    from deeplab.inference.files import (
        collect_inputs,
        output_stems,
        segment_images,
        segment_video,
    )
    from deeplab.inference.labels import resolve_labels
    from deeplab.inference.segmenters import load_segmenter

    require(FLAGS, "checkpoint_path", "input", "output_dir")
    from deeplab.weights.zoo_cache import resolve_model_path  # preset:NAME
    FLAGS.checkpoint_path = resolve_model_path(FLAGS.checkpoint_path)
    segmenter = load_segmenter(FLAGS.checkpoint_path, FLAGS.max_size, FLAGS.tflite_input_range)
    labels = resolve_labels(FLAGS.checkpoint_path, segmenter.num_classes, FLAGS.dataset)
    print(f"class names and colours: {labels.source}")
    images, videos = collect_inputs(FLAGS.input)
    if not images and not videos:
        raise ValueError("no images or videos found in --input")
    output_dir = Path(FLAGS.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    names = list(labels.names)
    failures: dict[str, str] = {}
    # One output name per input, images and videos together (two folders' clip.mp4 too).
    stems = output_stems(images + videos)
    segment_images(segmenter, images, output_dir, names, labels.colormap, FLAGS.alpha,
                   FLAGS.also_save_color_mask, failures, stems)
    for video in videos:
        try:
            segment_video(segmenter, video, output_dir, names, labels.colormap,
                          FLAGS.alpha, stems[video])
        except ValueError as error:
            failures[str(video)] = str(error)
    print(f"results in {output_dir}")
    if failures:
        done = len(images) + len(videos) - len(failures)
        lines = "\n".join(f"  {path}: {why}" for path, why in failures.items())
        sys.exit(f"deeplab-predict: {len(failures)} of {len(images) + len(videos)} inputs "
                 f"could not be read (the other {done} are written):\n{lines}")


def run():
    """Console-script entry point."""
    run_binary("deeplab-predict", main, describe_device=True)


if __name__ == "__main__":
    run()
