r"""Builds a DeepLab model from the model flags, runs it on a generated image, reports it.

Example:
    python scripts/model_summary.py --model_variant=xception_65 --atrous_rates=6,12,18 \
        --decoder_output_stride=4 --input_size=513
"""

from __future__ import annotations

import numpy as np
from absl import flags

from deeplab.analysis.report import model_report
from deeplab.cli.model_flags import define_model_flags, model_config_from_flags
from deeplab.cli.runner import run_binary
from deeplab.model import DeepLab

define_model_flags()
flags.DEFINE_integer("input_size", 513, "Square input size for the report.")
flags.DEFINE_boolean("expand_nested", False, "Show the layers inside the backbone.")
FLAGS = flags.FLAGS


def main(argv):
    del argv
    config = model_config_from_flags(FLAGS)
    model = DeepLab(config)
    size = FLAGS.input_size
    # A generated image: a bright disc on a gradient, 0-255 uint8 as users feed photos.
    yy, xx = np.mgrid[0:size, 0:size]
    image = np.stack([xx * 255 // size, yy * 255 // size, np.full_like(xx, 128)], -1)
    image[(yy - size / 2) ** 2 + (xx - size / 2) ** 2 < (size / 4) ** 2] = 255
    logits = np.asarray(model(image[None].astype("uint8")))
    print(model_report(model, (size, size), expand=FLAGS.expand_nested))
    print(f"Logits for a {size}x{size} generated image: {logits.shape}, "
          f"classes predicted: {sorted(set(np.argmax(logits[0], -1).ravel().tolist()))}")


def run():
    """Entry point (the thin script, or a console script)."""
    run_binary("model_summary", main)


if __name__ == "__main__":
    run()
