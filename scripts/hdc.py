"""Checks dilation schedules against HDC and draws which input pixels each one reaches.

Thin entry point: flags, main and help live in ``deeplab/cli/hdc.py``.
"""

from deeplab.cli.hdc import run

if __name__ == "__main__":
    run()
