"""Exports a trained or imported model as a TF Serving SavedModel.

Thin entry point: flags, main and help live in ``deeplab/cli/export_model.py``.
"""

from deeplab.cli.export_model import run

if __name__ == "__main__":
    run()
