r"""Effective receptive field of a DeepLab model: heatmap PNG, .npy array, mass radii, satellites.

Example (the ASPP satellite pattern, with the backbone's spread removed):
    python scripts/erf.py --model_variant=mobilenet_v2 --atrous_rates=6,12,18 \
        --input_size=513 --num_images=4 --localize_backbone --log_scale --output=/tmp/erf
"""

from __future__ import annotations

from absl import flags

from deeplab.analysis.erf import (
    compute_erf,
    expected_satellites,
    find_satellites,
    localize_backbone,
    mass_radii,
)
from deeplab.analysis.figures import save_erf_heatmap
from deeplab.analysis.images import load_images, random_images
from deeplab.analysis.sizes import parse_size
from deeplab.cli.model_flags import define_model_flags, model_config_from_flags
from deeplab.cli.runner import run_binary
from deeplab.runs.atomic import atomic_path

define_model_flags()
flags.DEFINE_string("input_size", "513", "Input size: S or H,W (the ERF is measured at it).")
flags.DEFINE_integer("num_images", 8, "Images to average over.")
flags.DEFINE_string("images", "", "Folder of images or an .npz file; empty: random images.")
flags.DEFINE_integer("class_index", None, "Differentiate this class's logit (default: mean).")
flags.DEFINE_enum("mode", "positive", ["positive", "abs"], "Positive part or |gradient|.")
flags.DEFINE_string("weights", "", "A .weights.h5 file to load (default: random init).")
flags.DEFINE_integer("seed", 0, "Seed of the random weights and images.")
flags.DEFINE_boolean("localize_backbone", False,
                     "Keep only the centre tap of the backbone's convs (after the stem) to see "
                     "the head's own taps.")
flags.DEFINE_boolean("xla", False, "Compute the gradient under XLA (slower on the CPU).")
flags.DEFINE_boolean("log_scale", False, "Log colour scale in the heatmap.")
flags.DEFINE_string("output", "erf", "Output prefix: writes <output>.png and <output>.npy.")
FLAGS = flags.FLAGS


def _report(erf, config, size, found) -> str:
    radii = mass_radii(erf)
    lines = [f"ERF of {config.model_variant} at {size[0]}x{size[1]}, OS {config.output_stride},"
             f" rates {list(config.atrous_rates)}:",
             "  mass radii: " + ", ".join(f"{f:.0%} within {r:.0f} px" for f, r in radii.items())]
    for s in expected_satellites(config.atrous_rates, config.output_stride or 32, size):
        where = "inside" if s.inside else "off the feature map (degenerate)"
        rays = sum(any(abs(d - s.offset) <= 16 for d in ray) for ray in found)
        lines.append(f"  rate {s.rate}: taps at ±{s.offset} px, {where}; a peak within "
                     f"±16 px on {rays}/8 rays")
    lines.append(f"  peaks per ray (→ ← ↓ ↑ ↘ ↙ ↗ ↖): {found}")
    return "\n".join(lines)


def main(argv):
    del argv
    import keras
    import numpy as np

    size = parse_size(FLAGS.input_size, "input_size")
    if FLAGS.num_images < 1:
        raise ValueError("--num_images must be >= 1.")
    config = model_config_from_flags(FLAGS, crop_size=size)
    keras.utils.set_random_seed(FLAGS.seed)
    from deeplab.model import DeepLab

    model = DeepLab(config)
    if FLAGS.weights:
        model.load_weights(FLAGS.weights)
    if FLAGS.localize_backbone:
        localize_backbone(model)
    images = (load_images(FLAGS.images, size, FLAGS.num_images) if FLAGS.images
              else random_images(FLAGS.num_images, size, FLAGS.seed))
    erf = compute_erf(model, images, FLAGS.class_index, FLAGS.mode, jit_compile=FLAGS.xla)
    found = find_satellites(erf)
    report = _report(erf, config, size, found)
    print(report)
    with atomic_path(FLAGS.output + ".npy") as tmp:
        np.save(tmp, erf)
    title = (f"ERF of {config.model_variant}, OS {config.output_stride}, rates "
             f"{list(config.atrous_rates)}, {size[0]}x{size[1]}\n{FLAGS.mode} part of the "
             f"gradient, {FLAGS.num_images} images"
             + (", backbone localized" if FLAGS.localize_backbone else ""))
    save_erf_heatmap(erf, FLAGS.output + ".png", FLAGS.log_scale, mass_radii(erf),
                     expected_satellites(config.atrous_rates, config.output_stride or 32, size),
                     title)
    print(f"wrote {FLAGS.output}.png and {FLAGS.output}.npy")


def run():
    """Entry point (the thin script, or a console script)."""
    run_binary("erf", main)


if __name__ == "__main__":
    run()
