"""One benchmark run: forward (eager / tf.function / XLA, float32 / bfloat16) against this
machine's matmul peak, a train step, the input pipeline, TFLite, and keras-hub when installed.

Thin entry point: flags, main and help live in ``deeplab/cli/benchmark.py``.
"""

from deeplab.cli.benchmark import run

if __name__ == "__main__":
    run()
