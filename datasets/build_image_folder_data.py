"""Converts any folder of images + a folder of masks to TFRecords + dataset.json.

Thin entry point: flags, main and help live in ``deeplab/cli/build_image_folder_data.py``.
"""

from deeplab.cli.build_image_folder_data import run

if __name__ == "__main__":
    run()
