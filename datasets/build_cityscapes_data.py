"""Converts Cityscapes (leftImg8bit + gtFine) to TFRecords + dataset.json.

Thin entry point: flags, main and help live in ``deeplab/cli/build_cityscapes_data.py``.
"""

from deeplab.cli.build_cityscapes_data import run

if __name__ == "__main__":
    run()
