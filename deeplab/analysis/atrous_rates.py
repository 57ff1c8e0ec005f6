"""Atrous rates chosen from the input size (resolution-aware design, geometric rule).

The paper ("Resolution-Aware Design of Atrous Rates for Semantic Segmentation
Networks", arXiv 2307.14179) ties ASPP rates to the input size; its exact constant was
not available to us (papers.md §2.6, §8). This module implements the geometric reading:
the largest useful rate is the one whose outer taps, seen from the centre pixel, still
land inside the feature map.
"""

from __future__ import annotations

import math


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
