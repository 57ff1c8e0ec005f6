"""Converts palette ground-truth PNGs to single-channel class-id PNGs (the original's tool).

Thin entry point: flags, main and help live in ``deeplab/cli/remove_gt_colormap.py``.
"""

from deeplab.cli.remove_gt_colormap import run

if __name__ == "__main__":
    run()
