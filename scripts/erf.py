"""Effective receptive field of a DeepLab model: heatmap PNG, .npy array, mass radii, satellites.

Thin entry point: flags, main and help live in ``deeplab/cli/erf.py``.
"""

from deeplab.cli.erf import run

if __name__ == "__main__":
    run()
