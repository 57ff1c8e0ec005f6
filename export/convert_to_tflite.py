"""Converts a trained or imported model (or our SavedModel export) to TFLite.

Thin entry point: flags, main and help live in ``deeplab/cli/convert_to_tflite.py``.
"""

from deeplab.cli.convert_to_tflite import run

if __name__ == "__main__":
    run()
