"""HDC criterion verdicts (papers.md §7.4) and the geometric atrous-rate rule."""

from __future__ import annotations

import pytest

from deeplab.analysis.atrous_rates import geometric_atrous_rates, max_useful_rate
from deeplab.analysis.hdc import check_hdc


@pytest.mark.parametrize(
    "rates, m2, gcd, valid",
    [
        ([1, 2, 3], 2, 1, True),
        ([1, 2, 5], 2, 1, True),
        ([1, 2, 5, 9], 2, 1, True),
        ([1, 3, 5], 3, 1, True),
        ([1, 2, 4], 2, 1, True),
        ([1, 2, 9], 5, 1, False),
        ([2, 2, 2], 2, 2, False),
        ([2, 4, 8], 4, 2, False),
        ([2, 4, 2], 6, 2, False),
        ([5, 9, 17], 9, 1, False),
        ([1, 6, 12, 18], 6, 1, False),
    ],
)
def test_hdc_verdicts_from_the_paper_table(rates, m2, gcd, valid):
    verdict = check_hdc(rates)
    assert (verdict.max_distances[0], verdict.common_factor, verdict.valid) == (m2, gcd, valid)
    assert bool(verdict.reasons) == (not valid)


def test_hdc_reasons_say_why():
    assert check_hdc([1, 2, 5, 9]).max_distances == (2, 5, 9)
    assert "gridding" in check_hdc([1, 2, 9]).reasons[0]
    assert "common factor 2" in check_hdc([2, 4, 8]).reasons[-1]
    with pytest.raises(ValueError, match="at least two rates"):
        check_hdc([3])


@pytest.mark.parametrize(
    "crop, os, expected", [(513, 16, (5, 10, 15)), (513, 8, (10, 20, 30)), (769, 16, (8, 16, 24))]
)
def test_geometric_rates(crop, os, expected):
    assert geometric_atrous_rates((crop, crop), os) == expected


def test_geometric_rule_values():
    assert max_useful_rate(513, 16) == 16  # 33-pixel map: taps at ±16 still land inside
    with pytest.raises(ValueError, match="too small"):
        geometric_atrous_rates(65, 16)
