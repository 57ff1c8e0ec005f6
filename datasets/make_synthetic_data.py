"""Writes the deterministic synthetic segmentation data set (records + dataset.json).

Thin entry point: flags, main and help live in ``deeplab/cli/make_synthetic_data.py``.
"""

from deeplab.cli.make_synthetic_data import run

if __name__ == "__main__":
    run()
