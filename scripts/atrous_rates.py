"""Atrous-rate degeneration table and the rates our rules pick for a crop size and output stride.

Thin entry point: flags, main and help live in ``deeplab/cli/atrous_rates.py``.
"""

from deeplab.cli.atrous_rates import run

if __name__ == "__main__":
    run()
