"""Converts ADE20K SceneParsing (ADEChallengeData2016) to TFRecords + dataset.json.

Thin entry point: flags, main and help live in ``deeplab/cli/build_ade20k_data.py``.
"""

from deeplab.cli.build_ade20k_data import run

if __name__ == "__main__":
    run()
