"""Converts iSAID to tiled TFRecords + dataset.json (16 classes from the colour-coded masks).

Thin entry point: flags, main and help live in ``deeplab/cli/build_isaid_data.py``.
"""

from deeplab.cli.build_isaid_data import run

if __name__ == "__main__":
    run()
