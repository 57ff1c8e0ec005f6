"""The Hybrid Dilated Convolution (HDC) criterion against gridding (Wang et al., WACV 2018)."""

from __future__ import annotations

import dataclasses
import math
from functools import reduce


@dataclasses.dataclass(frozen=True)
class HDCVerdict:
    """Result of :func:`check_hdc`.

    Attributes:
        rates: the schedule checked.
        max_distances: (M_2, ..., M_n); M_n = r_n.
        common_factor: gcd of the rates.
        valid: M_2 <= kernel_size and no common factor > 1.
        reasons: why the schedule fails (empty when valid).
    """

    rates: tuple[int, ...]
    max_distances: tuple[int, ...]
    common_factor: int
    valid: bool
    reasons: tuple[str, ...]


def check_hdc(rates, kernel_size: int = 3) -> HDCVerdict:
    """Checks a dilation schedule of stacked K×K convs against the HDC rules.

    ``M_i = max(M_{i+1} - 2 r_i, M_{i+1} - 2 (M_{i+1} - r_i), r_i)`` with ``M_n = r_n``;
    the stack covers its receptive field without holes when ``M_2 <= K``, and the rates
    must share no common factor > 1 (2, 4, 8 only ever sees even offsets).

    Example:
        >>> check_hdc([1, 2, 5]).valid
        True
        >>> check_hdc([1, 2, 9]).reasons[0]
        'M_2 = 5 exceeds the kernel size 3: the stack leaves holes (gridding).'
    """
    rates = tuple(int(r) for r in rates)
    if len(rates) < 2:
        raise ValueError(f"check_hdc needs at least two rates, got {rates}.")
    if min(rates) < 1:
        raise ValueError(f"check_hdc: rates must be positive, got {rates}.")
    distances = [rates[-1]]
    for r in reversed(rates[1:-1]):
        m = distances[0]
        distances.insert(0, max(m - 2 * r, m - 2 * (m - r), r))
    common = reduce(math.gcd, rates)
    reasons = []
    if distances[0] > kernel_size:
        reasons.append(
            f"M_2 = {distances[0]} exceeds the kernel size {kernel_size}: the stack leaves "
            "holes (gridding)."
        )
    if common > 1:
        reasons.append(
            f"the rates share the common factor {common}: only every {common}-th input "
            "pixel is reached."
        )
    return HDCVerdict(rates, tuple(distances), common, not reasons, tuple(reasons))
