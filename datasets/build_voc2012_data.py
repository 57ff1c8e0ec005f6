"""Converts PASCAL VOC 2012 (and optionally SBD for train_aug) to TFRecords + dataset.json.

Thin entry point: flags, main and help live in ``deeplab/cli/build_voc2012_data.py``.
"""

from deeplab.cli.build_voc2012_data import run

if __name__ == "__main__":
    run()
