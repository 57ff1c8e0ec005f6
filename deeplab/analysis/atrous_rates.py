"""Atrous rates and the input size: degeneration checks and two rules that pick rates.

The paper ("Resolution-Aware Design of Atrous Rates for Semantic Segmentation
Networks", arXiv 2307.14179) ties ASPP rates to the input size; its exact constant was
not available to us (papers.md §2.6, §8). Here: the valid-tap fractions of DeepLabv3
Fig. 4 and a warning for rates that degenerate on a crop; the geometric rule (the largest
useful rate is the one whose outer taps, seen from the centre pixel, still land inside the
feature map) and a search that maximises an analytic in-image ERF coverage.
See docs/atrous_rates.md.
"""

from __future__ import annotations

import dataclasses
import itertools
import math

import numpy as np


def feature_size(input_size: int, output_stride: int) -> int:
    """Size of a SAME-padded feature map: ``ceil(S / OS)`` (513 → 33 at OS 16)."""
    return int(math.ceil(input_size / output_stride))


def max_useful_rate(input_size: int, output_stride: int) -> int:
    """``r_max = floor((ceil(S / OS) - 1) / 2)``: larger rates miss the map from its centre."""
    return (feature_size(input_size, output_stride) - 1) // 2


def geometric_atrous_rates(
    crop_size, output_stride: int, num_branches: int = 3
) -> tuple[int, ...]:
    """Rates ``(r, 2r, ..., n·r)`` with ``r = floor(r_max / n)`` for the smaller crop side.

    Example: a 513 crop at output stride 16 gives r_max 16 and rates (5, 10, 15), where
    the DeepLab default (6, 12, 18) already loses rate 18 (papers.md §7.5).
    """
    if num_branches < 1:
        raise ValueError(f"num_branches must be >= 1, got {num_branches}.")
    side = min(crop_size) if isinstance(crop_size, (tuple, list)) else int(crop_size)
    base = max_useful_rate(side, output_stride) // num_branches
    if base < 1:
        raise ValueError(
            f"crop size {side} at output stride {output_stride} gives a "
            f"{feature_size(side, output_stride)}-pixel feature map: too small for "
            f"{num_branches} distinct atrous rates. Use a larger crop or fewer branches."
        )
    return tuple(base * (i + 1) for i in range(num_branches))


def _sides(size) -> tuple[int, int]:
    """(h, w) from an int or a pair."""
    if isinstance(size, (tuple, list)):
        return int(size[0]), int(size[1])
    return int(size), int(size)


def _axis_fraction_all_valid(n: int, rate: int, kernel_size: int) -> float:
    """Per axis: positions i with every tap i + a·rate (|a| <= (k-1)/2) inside [0, n)."""
    reach = rate * (kernel_size - 1) // 2
    return max(n - 2 * reach, 0) / n


def valid_tap_fraction(map_size, rate: int, kernel_size: int = 3) -> float:
    """Fraction of feature-map positions where all k² taps of a rate-``rate`` conv are valid.

    DeepLabv3 Fig. 4 (papers.md §7.5): on a 65x65 map, r=1 0.939, r=6 0.665, r=12 0.398,
    r=18 0.199, r=24 0.068; on 33x33, r=6 0.405, r=12 0.074, r=18 0. ``map_size`` is an
    int (square) or (h, w).
    """
    h, w = _sides(map_size)
    return _axis_fraction_all_valid(h, rate, kernel_size) * _axis_fraction_all_valid(
        w, rate, kernel_size
    )


def centre_only_fraction(map_size, rate: int) -> float:
    """Fraction of positions where only the centre tap of a 3x3 atrous conv is valid.

    Such positions see a 1x1 conv; every position does once ``rate >= n``.
    """

    def axis(n):
        # Both i - r < 0 and i + r > n - 1: i in [n - r, r - 1].
        return max(0, min(n - 1, rate - 1) - max(0, n - rate) + 1) / n

    h, w = _sides(map_size)
    return axis(h) * axis(w)


@dataclasses.dataclass(frozen=True)
class RateCheck:
    """How an atrous rate fares on the feature map of a crop.

    Attributes:
        rate: the atrous rate.
        feature_size: (h, w) of the feature map at the output stride.
        valid_fraction: positions whose 9 taps are all valid (:func:`valid_tap_fraction`).
        degenerate: the centre pixel's outer taps fall outside the map
            (``rate > max_useful_rate``): the branch is a 1x1 conv there.
    """

    rate: int
    feature_size: tuple[int, int]
    valid_fraction: float
    degenerate: bool


def check_rates(rates, crop_size, output_stride: int) -> list[RateCheck]:
    """A :class:`RateCheck` per rate for ``crop_size`` (int or (h, w)) at ``output_stride``."""
    h, w = _sides(crop_size)
    size = (feature_size(h, output_stride), feature_size(w, output_stride))
    r_max = min(max_useful_rate(h, output_stride), max_useful_rate(w, output_stride))
    return [
        RateCheck(int(r), size, valid_tap_fraction(size, int(r)), int(r) > r_max)
        for r in rates
    ]


def degenerate_rate_warnings(rates, crop_size, output_stride: int) -> list[str]:
    """One warning message per rate that degenerates on the crop (none when all are useful).

    Example: rate 18 at output stride 16 on a 513 crop (33x33 map) reaches past the map
    from its centre, and no position has all 9 taps valid.
    """
    messages = []
    for c in check_rates(rates, crop_size, output_stride):
        if c.degenerate:
            h, w = c.feature_size
            messages.append(
                f"atrous rate {c.rate} degenerates for crop {'x'.join(map(str, _sides(crop_size)))}"
                f" at output stride {output_stride}: on the {h}x{w} feature map the centre "
                f"pixel's outer taps fall outside, and {100 * c.valid_fraction:.1f}% of positions "
                f"have all 9 taps valid (largest useful rate {(min(h, w) - 1) // 2}; "
                "atrous_rates='auto' picks rates that fit)."
            )
    return messages


def _tap_profiles(n: int, rates: np.ndarray, sigma: float) -> np.ndarray:
    """[len(rates), n]: one axis of a 3x3 atrous conv's taps seen from the centre pixel.

    Taps at c - r, c, c + r (c = n // 2, the model's centre output pixel), each a Gaussian
    blob of ``sigma`` feature pixels standing for the backbone's own ERF. Taps off the map
    read zero padding and carry nothing; rate 0 stands for the 1x1 branch (centre only).
    """
    c = n // 2
    x = np.arange(n)[None, :]
    radius = max(1, math.ceil(4 * sigma))
    norm = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2).sum()

    def blob(center):
        return np.exp(-0.5 * ((x - center) / sigma) ** 2) / norm

    r = rates[:, None]
    outer = (r > 0) * ((c - r >= 0) * blob(c - r) + (c + r <= n - 1) * blob(c + r))
    return blob(c) + outer


def _coverage(combos: np.ndarray, h: int, w: int, sigma: float) -> np.ndarray:
    """:func:`erf_coverage` of each row of ``combos`` ([B, k] rates)."""
    rates = np.arange(int(combos.max()) + 1)
    rows, cols = _tap_profiles(h, rates, sigma), _tap_profiles(w, rates, sigma)
    # Each rate branch gives rows[r] ⊗ cols[r] (its 9 taps); the 1x1 branch one centre blob.
    erf = np.einsum("bki,bkj->bij", rows[combos], cols[combos]) + np.outer(rows[0], cols[0])
    erf /= 1 + 9 * combos.shape[1]  # Nominal mass: what falls off the map is lost.
    return np.minimum(erf, 1.0 / (h * w)).sum(axis=(1, 2))


def erf_coverage(rates, crop_size, output_stride: int, backbone_erf_px: float = 32.0) -> float:
    """In-image ERF coverage of an ASPP head's centre pixel, in [0, 1].

    The analytic ERF (papers.md §2.5): a Gaussian blob of ``backbone_erf_px`` input pixels
    (standard deviation; the backbone's own ERF, about r50 / 1.18 of a measured one) at
    the centre (the 1x1 branch) and at each of the 9 taps of every rate; blobs off the
    feature map are lost. Coverage is the overlap ``sum(min(ERF, uniform))`` with the
    uniform distribution over the map: 1 when the ERF spreads evenly over the image,
    lower when taps cluster at the centre or fall outside.
    """
    h, w = (feature_size(s, output_stride) for s in _sides(crop_size))
    sigma = backbone_erf_px / output_stride
    return float(_coverage(np.array([list(rates)], dtype=int), h, w, sigma)[0])


def erf_atrous_rates(
    crop_size, output_stride: int, num_branches: int = 3, backbone_erf_px: float = 32.0
) -> tuple[int, ...]:
    """Increasing useful rates (``<= max_useful_rate``) that maximise :func:`erf_coverage`.

    Rates closer than one blob width (``backbone_erf_px / output_stride`` feature pixels)
    to each other or to the centre are not distinct taps in the ERF and are not
    considered. The search is exhaustive over a lattice of at most ~24 candidate rates,
    then exhaustive again within one lattice step of the best; ties go to smaller rates.

    Raises:
        ValueError: the feature map has no room for ``num_branches`` distinct rates.
    """
    h, w = _sides(crop_size)
    r_max = min(max_useful_rate(h, output_stride), max_useful_rate(w, output_stride))
    fh, fw = feature_size(h, output_stride), feature_size(w, output_stride)
    sigma = backbone_erf_px / output_stride
    gap = max(1, math.ceil(sigma))

    def distinct(combo):
        return combo[0] >= gap and all(b - a >= gap for a, b in zip(combo, combo[1:]))

    step = max(1, math.ceil(r_max / 24))
    lattice = itertools.combinations(range(1, r_max + 1, step), num_branches)
    best = _best([c for c in lattice if distinct(c)], fh, fw, sigma)
    if best is not None and step > 1:
        local = [range(max(1, r - step + 1), min(r_max, r + step - 1) + 1) for r in best]
        best = _best([c for c in itertools.product(*local) if distinct(c)], fh, fw, sigma)
    if best is None:
        raise ValueError(
            f"crop size {crop_size} at output stride {output_stride} leaves room for rates up "
            f"to {r_max}: too few for {num_branches} rates at least {gap} apart (lower "
            "backbone_erf_px, use fewer branches or a larger crop)."
        )
    return best


def _best(candidates: list, h: int, w: int, sigma: float) -> tuple[int, ...] | None:
    if not candidates:
        return None
    combos = np.array(sorted(set(candidates)), dtype=int)
    scores = np.concatenate(
        [_coverage(combos[i : i + 256], h, w, sigma) for i in range(0, len(combos), 256)]
    )
    # argmax returns the first maximum: the lexicographically smallest rates among ties.
    return tuple(int(r) for r in combos[int(np.argmax(np.round(scores, 12)))])
