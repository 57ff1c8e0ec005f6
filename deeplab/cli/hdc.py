"""Checks dilation schedules against HDC and draws which input pixels each one reaches.

Example (DeepLab's multi-grid (1, 2, 4) at rate 2 against an HDC schedule):
    python scripts/hdc.py --rates=2,4,8 --rates=1,2,5 --output=/tmp/gridding.png
"""

from __future__ import annotations

from absl import flags

from deeplab.analysis.figures import save_gridding_picture
from deeplab.analysis.gridding import analyse
from deeplab.analysis.sizes import parse_ints
from deeplab.cli.runner import run_binary

flags.DEFINE_multi_string("rates", ["1,2,5", "2,2,2"],
                          "A dilation schedule, e.g. 1,2,5; repeat the flag to compare several.")
flags.DEFINE_integer("kernel_size", 3, "Kernel size of every conv in the stack (odd).")
flags.DEFINE_string("output", "gridding.png", "PNG of the reached input pixels.")
FLAGS = flags.FLAGS


def main(argv):
    del argv
    schedules = [parse_ints(value, "rates") for value in FLAGS.rates]
    results = [analyse(rates, FLAGS.kernel_size) for rates in schedules]
    for result in results:
        reach = (f"RF {result.receptive_field}x{result.receptive_field}, "
                 f"{result.coverage:.1%} of it reached")
        if result.hdc is None:
            print(f"{list(result.rates)}: one layer (HDC judges stacks); {reach}")
            continue
        verdict = "HDC valid" if result.hdc.valid else "HDC fails"
        print(f"{list(result.rates)}: {verdict} (M = {list(result.hdc.max_distances)}); {reach}")
        for reason in result.hdc.reasons:
            print(f"    {reason}")
    save_gridding_picture(results, FLAGS.output, FLAGS.kernel_size)
    print(f"wrote {FLAGS.output}")


def run():
    """Entry point (the thin script, or a console script)."""
    run_binary("hdc", main)


if __name__ == "__main__":
    run()
