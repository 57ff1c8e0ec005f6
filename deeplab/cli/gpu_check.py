"""Checks a GPU machine end to end in one command (about 8 minutes on one GPU).

Trains MobileNetV2 and Xception-65 DeepLabv3+ with MirroredStrategy over the visible GPUs
(float32, mixed_float16, mixed_bfloat16; with and without XLA) and checks the loss falls;
compares logits on each GPU and under XLA with TensorFlow's CPU kernels (same weights, OS 8
and 16); exports the TF Serving SavedModel and serves an image on the GPU; prints train and
forward images/s and peak GPU memory. Exits 1 if any check fails or no GPU is found.

    python scripts/gpu_check.py                          # the whole check at 513
    python scripts/gpu_check.py --device=cpu --size=65 --batch_sizes=2 --models=mobilenet_v2
"""

from __future__ import annotations

import json
import sys

from absl import flags

from deeplab.benchmark.device_check import (
    MODELS,
    PRECISIONS,
    CheckSettings,
    NoGPU,
    format_results,
    run_check,
)
from deeplab.cli.runner import run_binary
from deeplab.runs.atomic import write_text

flags.DEFINE_enum("device", "gpu", ["gpu", "cpu"], "gpu: fail without one; cpu: hide GPUs.")
flags.DEFINE_list("models", list(MODELS), "Models to train and compare.")
flags.DEFINE_list("precisions", list(PRECISIONS), "Dtype policies of the training runs.")
flags.DEFINE_list("xla", ["false", "true"], "XLA settings of the training runs.")
flags.DEFINE_integer("size", 513, "Square crop of training, timing and parity.")
flags.DEFINE_list("batch_sizes", ["8", "16"], "Global batch sizes (the first trains).")
flags.DEFINE_integer("steps", 10, "Training steps on a fixed batch; the loss must fall.")
flags.DEFINE_integer("timed_steps", 3, "Timed calls per speed figure.")
flags.DEFINE_list("output_strides", ["8", "16"], "Output strides of the parity check.")
flags.DEFINE_boolean("serve", True, "Export the SavedModel and serve one image.")
flags.DEFINE_string("output", None, "Also write the results as JSON here.")
FLAGS = flags.FLAGS


def main(argv):
    del argv
    settings = CheckSettings(
        device=FLAGS.device, models=tuple(FLAGS.models),
        precisions=tuple(FLAGS.precisions),
        xla=tuple(v.lower() in ("1", "true", "yes") for v in FLAGS.xla),
        size=FLAGS.size, batch_sizes=tuple(int(b) for b in FLAGS.batch_sizes),
        steps=FLAGS.steps, timed_steps=FLAGS.timed_steps,
        output_strides=tuple(int(s) for s in FLAGS.output_strides), serve=FLAGS.serve)
    results = run_check(settings, log=lambda line: print(line, flush=True))
    print("\n" + format_results(results))
    if FLAGS.output:
        write_text(FLAGS.output, json.dumps(results, indent=2, default=str) + "\n")
    sys.exit(0 if results["ok"] else 1)


def run():
    """Entry point (the thin script, or a console script)."""
    run_binary("gpu_check", main, (NoGPU,))


if __name__ == "__main__":
    run()
