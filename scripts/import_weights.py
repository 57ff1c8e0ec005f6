"""Imports weights of the original release into a deeplab-keras model.

Thin entry point: flags, main and help live in ``deeplab/cli/import_weights.py``.
"""

from deeplab.cli.import_weights import run

if __name__ == "__main__":
    run()
