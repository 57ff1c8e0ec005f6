r"""One benchmark run: forward (eager / tf.function / XLA, float32 / bfloat16) against this
machine's matmul peak, a train step, the input pipeline, TFLite, and keras-hub when installed.

Writes the results as JSON and prints a table. Check the machine is quiet first (uptime).

Examples:
    python scripts/benchmark.py --output=/tmp/benchmark.json            # the default run
    python scripts/benchmark.py --configs=mobilenet_v2 --modes=function --dtypes=float32 \
        --train_config= --pipeline_batches=0 --tflite_reference=false --tflite_ours= --nopeers
    # Our own exported files join the originals (deeplab-export / export/convert_to_tflite.py):
    python scripts/benchmark.py --tflite_models=/path/ours_513.tflite,/path/ours_257.tflite
"""

from __future__ import annotations

import json
import sys

from absl import flags

from deeplab.benchmark.forward import DTYPES, MODES, PRESETS
from deeplab.benchmark.harness import Settings, run_benchmark
from deeplab.benchmark.report import format_report
from deeplab.benchmark.tflite import reference_tflite_models
from deeplab.cli.runner import run_binary
from deeplab.runs.atomic import write_text

flags.DEFINE_list("configs", ["mobilenet_v2", "xception_65_v3plus"],
                  f"Forward configs: {sorted(PRESETS)}.")
flags.DEFINE_list("sizes", ["513"], "Square input sizes of the forward runs.")
flags.DEFINE_list("modes", list(MODES), "Forward modes.")
flags.DEFINE_list("dtypes", list(DTYPES), "Keras dtype policies.")
flags.DEFINE_integer("batch_size", 1, "Forward batch size.")
flags.DEFINE_integer("iterations", 5, "Timed calls per measurement (after one warm-up).")
flags.DEFINE_integer("peak_size", 4096, "Side of the matmul that measures the peak.")
flags.DEFINE_string("train_config", "mobilenet_v2", "Config of the train step; empty: skip.")
flags.DEFINE_integer("train_size", 513, "Train crop size (also the pipeline's).")
flags.DEFINE_integer("train_batch_size", 2, "Train batch size.")
flags.DEFINE_integer("train_steps", 3, "Timed train steps.")
flags.DEFINE_integer("pipeline_batches", 10, "Input-pipeline batches to time; 0: skip.")
flags.DEFINE_boolean("tflite_reference", True,
                     "Time the original release's TFLite files ($DEEPLAB_REFERENCE_DIR/tflite).")
flags.DEFINE_list("tflite_models", [],
                  "More TFLite files to time beside the originals, e.g. our exported ones.")
flags.DEFINE_list("tflite_ours", ["float:257", "int8:513"],
                  "Export our MobileNetV2 DeepLabv3 (random weights) and time it: "
                  "quantization:size.")
flags.DEFINE_integer("tflite_threads", 2, "Interpreter threads.")
flags.DEFINE_integer("tflite_goal_rounds", 30,
                     "Interleaved rounds of our export against the original's TFLite file "
                     "with the same imported weights (0: skip).")
flags.DEFINE_boolean("peers", True, "Time keras-hub's DeepLabV3 when it is installed.")
flags.DEFINE_integer("goal_rounds", 7,
                     "Interleaved rounds (ours, keras-hub, matmul) for the Xception-65 targets; "
                     "0: skip.")
flags.DEFINE_list("kernel_configs", ["mobilenet_v2", "xception_65_v3plus"],
                  "Configs whose forward and train step run on TF's portable kernels and on "
                  "oneDNN's (child processes, alternating); empty: skip.")
flags.DEFINE_integer("kernel_rounds", 3, "Alternating rounds of the kernel comparison.")
flags.DEFINE_string("output", "benchmark.json", "JSON results.")
flags.DEFINE_boolean("markdown", False, "Print Markdown tables.")
FLAGS = flags.FLAGS


def main(argv):
    del argv
    settings = Settings(
        configs=tuple(FLAGS.configs), sizes=tuple(int(s) for s in FLAGS.sizes),
        modes=tuple(FLAGS.modes), dtypes=tuple(FLAGS.dtypes), batch_size=FLAGS.batch_size,
        iterations=FLAGS.iterations, peak_size=FLAGS.peak_size,
        train_config=FLAGS.train_config or None, train_size=FLAGS.train_size,
        train_batch_size=FLAGS.train_batch_size, train_steps=FLAGS.train_steps,
        pipeline_batches=FLAGS.pipeline_batches,
        tflite_models=tuple((reference_tflite_models() if FLAGS.tflite_reference else [])
                            + FLAGS.tflite_models),
        tflite_ours=tuple(FLAGS.tflite_ours), tflite_threads=FLAGS.tflite_threads,
        tflite_goal_rounds=FLAGS.tflite_goal_rounds,
        peers=FLAGS.peers, goal_rounds=FLAGS.goal_rounds,
        kernel_configs=tuple(FLAGS.kernel_configs), kernel_rounds=FLAGS.kernel_rounds)
    unknown = [c for c in settings.configs + settings.kernel_configs + (
        (settings.train_config,) if settings.train_config else ()) if c not in PRESETS]
    if unknown:
        raise ValueError(f"unknown config {unknown[0]!r}; choose from {sorted(PRESETS)}.")
    settings.validate()
    results = run_benchmark(settings, log=lambda message: print(f"[benchmark] {message}",
                                                                 file=sys.stderr, flush=True))
    write_text(FLAGS.output, json.dumps(results, indent=2) + "\n")
    print(format_report(results, FLAGS.markdown))
    print(f"\nwrote {FLAGS.output}")


def run():
    """Entry point (the thin script, or a console script)."""
    run_binary("benchmark", main)


if __name__ == "__main__":
    run()
