r"""Parameters and multiply-adds of a DeepLab config, per layer and in total.

Example (the DeepLabv3+ paper's 54.17 B row; --space_to_batch counts atrous convs as TF1 ran
them, matching the papers' regular-ASPP numbers):
    python scripts/flops.py --model_variant=xception_65 --atrous_rates=6,12,18 \
        --decoder_output_stride=4 --input_size=513 --depth=2
"""

from __future__ import annotations

from absl import flags

from deeplab.analysis.layer_costs import layer_costs
from deeplab.analysis.sizes import parse_size
from deeplab.analysis.tables import format_table
from deeplab.cli.model_flags import define_model_flags, model_config_from_flags
from deeplab.cli.runner import run_binary

define_model_flags()
flags.DEFINE_string("input_size", "513", "Input size: S or H,W.")
flags.DEFINE_boolean("space_to_batch", False,
                     "Count atrous convs as TF1's space-to-batch did (r·ceil(H/r) positions).")
flags.DEFINE_integer("depth", 1, "Layer-tree depth of the rows (1: backbone, aspp, decoder...).")
flags.DEFINE_boolean("markdown", False, "Print a Markdown table.")
FLAGS = flags.FLAGS


def main(argv):
    del argv
    size = parse_size(FLAGS.input_size, "input_size")
    config = model_config_from_flags(FLAGS)
    from deeplab.model import DeepLab

    rows = layer_costs(DeepLab(config), (1, *size, 3), FLAGS.space_to_batch, FLAGS.depth)
    total_params = sum(r.parameters for r in rows)
    total_madds = sum(r.madds for r in rows)
    table = [[r.name, f"{r.parameters:,}", f"{r.madds / 1e6:,.1f}",
              f"{100 * r.madds / max(total_madds, 1):.1f}%"] for r in rows]
    table.append(["total", f"{total_params:,}", f"{total_madds / 1e6:,.1f}", "100.0%"])
    counting = "space-to-batch (TF1)" if FLAGS.space_to_batch else "native dilated convs (TF2)"
    print(f"{config.model_variant}, OS {config.output_stride}, rates {list(config.atrous_rates)}"
          f", decoder {list(config.decoder_output_stride or [])}, {size[0]}x{size[1]}, "
          f"atrous convs counted as {counting}:")
    print(format_table(["layer", "parameters", "MAdds (M)", "share"], table, FLAGS.markdown))
    print(f"Total: {total_params:,} trainable parameters, {total_madds / 1e9:.3f} B MAdds.")


def run():
    """Entry point (the thin script, or a console script)."""
    run_binary("flops", main)


if __name__ == "__main__":
    run()
