"""Which input pixels a stack of dilated KxK convs reaches: the gridding picture of HDC.

A stack with rates r_1..r_n reaches offset (dy, dx) from an output pixel along as many
paths as there are ways to write dy (and dx) as sum_i a_i·r_i with |a_i| <= (K-1)/2.
The two axes are independent, so the 2-D path counts are the outer product of the
1-D counts, and a 1-D count is the convolution of the layers' dilated tap combs.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from deeplab.analysis.hdc import HDCVerdict, check_hdc


def _check(rates, kernel_size: int) -> tuple[int, ...]:
    rates = tuple(int(r) for r in rates)
    if not rates or min(rates) < 1:
        raise ValueError(f"gridding: rates must be one or more positive ints, got {rates}.")
    if kernel_size < 1 or kernel_size % 2 == 0:
        raise ValueError(f"gridding: kernel_size must be odd and positive, got {kernel_size}.")
    return rates


def reach_counts_1d(rates, kernel_size: int = 3) -> np.ndarray:
    """Paths from the output pixel to each offset -R..R along one axis (R = sum r·(K-1)/2)."""
    counts = np.ones(1, dtype=np.int64)
    for r in _check(rates, kernel_size):
        comb = np.zeros(r * (kernel_size - 1) + 1, dtype=np.int64)
        comb[::r] = 1
        counts = np.convolve(counts, comb)
    return counts


def reach_counts(rates, kernel_size: int = 3) -> np.ndarray:
    """[2R+1, 2R+1] paths to each input offset; the centre is index R."""
    counts = reach_counts_1d(rates, kernel_size)
    return np.outer(counts, counts)


def reach_mask(rates, kernel_size: int = 3) -> np.ndarray:
    """[2R+1, 2R+1] bool: the input offsets the stack reaches at all."""
    return reach_counts(rates, kernel_size) > 0


@dataclasses.dataclass(frozen=True)
class Gridding:
    """What a dilation schedule reaches.

    Attributes:
        rates: the schedule.
        receptive_field: side of the (square) receptive field, 2R + 1.
        coverage: fraction of the receptive field's pixels reached.
        hdc: the HDC verdict (None for a single layer, which HDC does not judge).
    """

    rates: tuple[int, ...]
    receptive_field: int
    coverage: float
    hdc: HDCVerdict | None


def analyse(rates, kernel_size: int = 3) -> Gridding:
    """Receptive field, coverage and HDC verdict of a schedule."""
    rates = _check(rates, kernel_size)
    mask = reach_mask(rates, kernel_size)
    hdc = check_hdc(rates, kernel_size) if len(rates) > 1 else None
    return Gridding(rates, mask.shape[0], float(mask.mean()), hdc)
