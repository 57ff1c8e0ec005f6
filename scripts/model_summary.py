"""Builds a DeepLab model from the model flags, runs it on a generated image, reports it.

Thin entry point: flags, main and help live in ``deeplab/cli/model_summary.py``.
"""

from deeplab.cli.model_summary import run

if __name__ == "__main__":
    run()
