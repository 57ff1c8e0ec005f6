"""Reach masks of stacked dilated convs (the gridding picture) and the HDC CLI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from deeplab.analysis.gridding import analyse, reach_counts, reach_counts_1d, reach_mask

REPO = Path(__file__).resolve().parent.parent


def test_two_two_two_reaches_only_even_offsets():
    mask = reach_mask([2, 2, 2])
    assert mask.shape == (13, 13)  # offsets -6..6
    offsets = np.arange(-6, 7)
    even = offsets % 2 == 0
    np.testing.assert_array_equal(mask, np.outer(even, even))
    assert analyse([2, 2, 2]).coverage == 49 / 169


def test_one_two_five_reaches_every_pixel_of_its_field():
    mask = reach_mask([1, 2, 5])
    assert mask.shape == (17, 17) and mask.all()
    result = analyse([1, 2, 5])
    assert (result.receptive_field, result.coverage, result.hdc.valid) == (17, 1.0, True)


def test_one_two_nine_leaves_holes_at_four_and_five():
    counts = reach_counts_1d([1, 2, 9])
    offsets = np.arange(-12, 13)
    assert offsets[counts == 0].tolist() == [-5, -4, 4, 5]
    assert not analyse([1, 2, 9]).hdc.valid


def test_path_counts_are_convolutions():
    np.testing.assert_array_equal(reach_counts_1d([1, 1]), [1, 2, 3, 2, 1])
    np.testing.assert_array_equal(reach_counts([1, 1])[2], [3, 6, 9, 6, 3])
    np.testing.assert_array_equal(reach_counts_1d([3], kernel_size=5), [1, 0, 0, 1, 0, 0, 1, 0,
                                                                        0, 1, 0, 0, 1])
    assert analyse([4]).hdc is None
    with pytest.raises(ValueError, match="odd"):
        reach_mask([1, 2], kernel_size=2)


def test_hdc_script_writes_the_picture_and_reports(tmp_path):
    out = tmp_path / "grid.png"
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "hdc.py"), "--rates=1,2,5", "--rates=2,2,2",
         f"--output={out}"], capture_output=True, text=True, timeout=60, cwd=REPO)
    assert result.returncode == 0, result.stderr
    assert "[1, 2, 5]: HDC valid" in result.stdout
    assert "[2, 2, 2]: HDC fails" in result.stdout and "common factor 2" in result.stdout
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    bad = subprocess.run([sys.executable, str(REPO / "scripts" / "hdc.py"), "--rates=1,x"],
                         capture_output=True, text=True, timeout=60, cwd=REPO)
    assert bad.returncode == 1 and "Traceback" not in bad.stderr
    assert bad.stderr.strip().splitlines()[-1].startswith("hdc: --rates takes integers")
