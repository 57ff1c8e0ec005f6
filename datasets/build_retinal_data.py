"""Converts a retinal vessel data set (DRIVE, STARE, CHASE_DB1, HRF) to TFRecords + dataset.json.

Thin entry point: flags, main and help live in ``deeplab/cli/build_retinal_data.py``.
"""

from deeplab.cli.build_retinal_data import run

if __name__ == "__main__":
    run()
