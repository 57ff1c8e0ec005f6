"""Parameters and multiply-adds of a DeepLab config, per layer and in total.

Thin entry point: flags, main and help live in ``deeplab/cli/flops.py``.
"""

from deeplab.cli.flops import run

if __name__ == "__main__":
    run()
