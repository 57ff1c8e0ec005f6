"""Checks a GPU machine end to end in one command (about 8 minutes on one GPU).

Thin entry point: flags, main and help live in ``deeplab/cli/gpu_check.py``.
"""

from deeplab.cli.gpu_check import run

if __name__ == "__main__":
    run()
