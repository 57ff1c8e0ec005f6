"""Valid-tap fractions (papers.md §7.5), degeneration warnings, the ERF-coverage search."""

from __future__ import annotations

import logging

import pytest

from deeplab.analysis.atrous_rates import (
    centre_only_fraction,
    check_rates,
    degenerate_rate_warnings,
    erf_atrous_rates,
    erf_coverage,
    geometric_atrous_rates,
    valid_tap_fraction,
)
from deeplab.config import ModelConfig


@pytest.mark.parametrize(
    "n, rate, fraction",
    [(65, 1, 0.939), (65, 6, 0.665), (65, 12, 0.398), (65, 18, 0.199), (65, 24, 0.068),
     (65, 32, 0.0), (33, 6, 0.405), (33, 12, 0.074), (33, 18, 0.0)],
)
def test_valid_tap_fraction_matches_deeplabv3_fig4(n, rate, fraction):
    assert round(valid_tap_fraction(n, rate), 3) == fraction


def test_valid_tap_fraction_exact_values():
    assert valid_tap_fraction(65, 6) == (53 / 65) ** 2  # 53 positions per axis keep ±6
    assert valid_tap_fraction((33, 65), 12) == (9 / 33) * (41 / 65)
    assert valid_tap_fraction(5, 1, kernel_size=5) == (1 / 5) ** 2


def test_centre_only_fraction_reaches_one_at_rate_n():
    assert centre_only_fraction(65, 32) == 0.0  # the middle row still has both taps
    assert centre_only_fraction(65, 33) == (1 / 65) ** 2
    assert centre_only_fraction(65, 65) == 1.0
    assert centre_only_fraction(33, 33) == 1.0
    assert centre_only_fraction(33, 18) == (3 / 33) ** 2  # rows 15..17 lose both taps


def test_check_rates_flags_rate_18_on_513_at_os16():
    checks = check_rates((6, 12, 18), 513, 16)
    assert [c.degenerate for c in checks] == [False, False, True]
    assert checks[2].feature_size == (33, 33) and checks[2].valid_fraction == 0.0
    assert [c.degenerate for c in check_rates((6, 12, 18), 769, 16)] == [False] * 3
    assert [c.degenerate for c in check_rates((12, 24, 36), (512, 1024), 8)] == [
        False, False, True]  # 64-pixel side: r_max 31


def test_degenerate_rate_warnings_say_rate_map_and_fraction():
    (message,) = degenerate_rate_warnings((6, 12, 18), 513, 16)
    assert message.startswith("atrous rate 18 degenerates for crop 513x513 at output stride 16")
    assert "33x33 feature map" in message and "0.0% of positions" in message
    assert "largest useful rate 16" in message
    assert degenerate_rate_warnings((5, 10, 15), 513, 16) == []


def test_model_config_logs_the_degenerate_rate(caplog):
    with caplog.at_level(logging.WARNING):
        ModelConfig(atrous_rates=(6, 12, 18), crop_size=(513, 513))
    assert [r.getMessage() for r in caplog.records if "degenerates" in r.getMessage()] == [
        "ModelConfig: " + degenerate_rate_warnings((6, 12, 18), 513, 16)[0]]
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        ModelConfig(atrous_rates=(6, 12, 18))  # no crop size: nothing to judge
        ModelConfig(atrous_rates="auto", crop_size=(513, 513))
    assert not [r for r in caplog.records if "degenerates" in r.getMessage()]


def test_erf_coverage_prefers_rates_that_fit():
    # Rate 18 loses its 8 satellites off the 33x33 map; (5, 10, 15) keeps them all.
    assert erf_coverage((5, 10, 15), 513, 16) > erf_coverage((6, 12, 18), 513, 16)
    # A single centre blob of 1 + 9·0 taps covers min(blob, 1/A) only.
    assert 0 < erf_coverage((40,), 65, 1, backbone_erf_px=1.0) < erf_coverage((20,), 65, 1, 1.0)


@pytest.mark.parametrize(
    "crop, os, expected", [(513, 16, (6, 10, 14)), (513, 8, (13, 20, 27)), (769, 16, (8, 14, 20))]
)
def test_erf_atrous_rates(crop, os, expected):
    rates = erf_atrous_rates(crop, os)
    assert rates == expected
    # The search result is at least as good as the geometric rule under its own measure.
    assert erf_coverage(rates, crop, os) >= erf_coverage(geometric_atrous_rates(crop, os), crop, os)


def test_erf_atrous_rates_keeps_rates_apart_and_useful():
    rates = erf_atrous_rates(1024, 8, backbone_erf_px=32)  # blob 4 feature px
    assert all(b - a >= 4 for a, b in zip(rates, rates[1:])) and rates[0] >= 4
    assert rates[-1] <= 63
    with pytest.raises(ValueError, match="too few for 3 rates at least 32 apart"):
        erf_atrous_rates(128, 1)


def test_atrous_rates_script_table_and_rules():
    import re
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parent.parent / "scripts" / "atrous_rates.py"
    result = subprocess.run([sys.executable, str(script), "--crop_size=513", "--output_stride=16",
                             "--rates=6,12,18"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert re.search(r"^rate +33x33$", out, re.M)
    assert re.search(r"^ +18 +0\.000\*$", out, re.M)  # degenerate on the 33x33 map
    assert re.search(r"^ +12 +0\.074$", out, re.M)
    assert re.search(r"^DeepLab default +6, 12, 18 +0\.405 / 0\.074 / 0\.000 .*rate 18 degenerates",
                     out, re.M)
    assert re.search(r"^geometric rule +5, 10, 15 ", out, re.M)
    assert re.search(r"^ERF-coverage search +6, 10, 14 ", out, re.M)
    bad = subprocess.run([sys.executable, str(script), "--crop_size=5,1,3"], capture_output=True,
                         text=True, timeout=60)
    assert bad.returncode == 1 and "Traceback" not in bad.stderr
    assert bad.stderr.strip().splitlines()[-1] == (
        "atrous_rates: --crop_size takes S or H,W; got '5,1,3'.")
