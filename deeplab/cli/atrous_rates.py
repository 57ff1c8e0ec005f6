r"""Atrous-rate degeneration table and the rates our rules pick for a crop size and output stride.

Example:
    python scripts/atrous_rates.py --crop_size=513 --crop_size=512,1024 --output_stride=16 \
        --output_stride=8
"""

from __future__ import annotations

from absl import flags

from deeplab.analysis.atrous_rates import (
    check_rates,
    erf_atrous_rates,
    erf_coverage,
    feature_size,
    geometric_atrous_rates,
    max_useful_rate,
    valid_tap_fraction,
)
from deeplab.analysis.sizes import parse_ints, parse_size
from deeplab.analysis.tables import format_table
from deeplab.cli.runner import run_binary

flags.DEFINE_multi_string("crop_size", ["513"], "Crop size S or H,W; repeat for several.")
flags.DEFINE_multi_integer("output_stride", [16, 8], "Output stride; repeat for several.")
flags.DEFINE_string("rates", "1,6,12,18,24,32,36", "Rates of the degeneration table.")
flags.DEFINE_integer("num_branches", 3, "Atrous branches the rules pick rates for.")
flags.DEFINE_float("backbone_erf_px", 32.0,
                   "Backbone ERF (Gaussian std, input px) of the ERF-coverage search.")
FLAGS = flags.FLAGS


def _default_rates(output_stride: int) -> tuple[int, ...]:
    """DeepLab's rates: (6, 12, 18) at OS 16, scaled with the output stride."""
    return tuple(r * 16 // output_stride for r in (6, 12, 18))


def _rule_rows(crop, output_stride):
    h, w = crop
    rules = [("DeepLab default", lambda: _default_rates(output_stride)),
             ("geometric rule", lambda: geometric_atrous_rates(crop, output_stride,
                                                              FLAGS.num_branches)),
             ("ERF-coverage search", lambda: erf_atrous_rates(
                 crop, output_stride, FLAGS.num_branches, FLAGS.backbone_erf_px))]
    rows = []
    for name, rule in rules:
        try:
            rates = rule()
        except ValueError as error:
            rows.append([name, "-", "-", "-", str(error)])
            continue
        checks = check_rates(rates, crop, output_stride)
        rows.append([
            name, ", ".join(map(str, rates)),
            " / ".join(f"{c.valid_fraction:.3f}" for c in checks),
            f"{erf_coverage(rates, crop, output_stride, FLAGS.backbone_erf_px):.3f}",
            ", ".join(f"rate {c.rate} degenerates" for c in checks if c.degenerate) or "-",
        ])
    return rows


def main(argv):
    del argv
    rates = parse_ints(FLAGS.rates, "rates")
    sizes = [parse_size(value, "crop_size") for value in FLAGS.crop_size]
    if min(FLAGS.output_stride) < 1 or min(rates, default=1) < 1:
        raise ValueError("--output_stride and --rates must be positive.")
    settings = [(crop, os) for crop in sizes for os in FLAGS.output_stride]
    maps = sorted({(feature_size(h, os), feature_size(w, os)) for (h, w), os in settings})
    print("Fraction of feature-map positions whose 9 taps all land on the map "
          "(DeepLabv3 Fig. 4); * = the centre pixel's outer taps fall off (degenerate):")
    headers = ["rate"] + [f"{h}x{w}" for h, w in maps]
    rows = [[r] + [f"{valid_tap_fraction(m, r):.3f}" + ("*" if r > (min(m) - 1) // 2 else "")
                   for m in maps] for r in rates]
    print(format_table(headers, rows))
    for crop, os in settings:
        h, w = crop
        fh, fw = feature_size(h, os), feature_size(w, os)
        r_max = min(max_useful_rate(h, os), max_useful_rate(w, os))
        print(f"\nCrop {h}x{w} at output stride {os}: {fh}x{fw} feature map, largest useful "
              f"rate {r_max}. ERF coverage: analytic, backbone ERF {FLAGS.backbone_erf_px:g} px.")
        print(format_table(["rule", "rates", "valid-tap fraction", "ERF coverage", "note"],
                           _rule_rows(crop, os)))


def run():
    """Entry point (the thin script, or a console script)."""
    run_binary("atrous_rates", main)


if __name__ == "__main__":
    run()
