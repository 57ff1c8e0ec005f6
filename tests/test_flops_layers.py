"""Per-layer parameters and MAdds (layer_costs) and the flops CLI, on a small model."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from deeplab.analysis.flops import count_madds, count_parameters
from deeplab.analysis.layer_costs import layer_costs
from deeplab.model import build_deeplab

REPO = Path(__file__).resolve().parent.parent
SHAPE = (1, 65, 65, 3)  # 5x5 features at OS 16


@pytest.fixture(scope="module")
def model():
    return build_deeplab(model_variant="mobilenet_v2", depth_multiplier=0.25, num_classes=3,
                         output_stride=16, atrous_rates=(6, 12, 18))


def test_top_level_rows_add_up(model):
    rows = layer_costs(model, SHAPE)
    assert [r.name for r in rows] == ["MobilenetV2", "aspp", "logits.semantic"]
    assert sum(r.madds for r in rows) == count_madds(model, SHAPE)
    assert sum(r.parameters for r in rows) == count_parameters(model)
    assert rows[-1].madds == 5 * 5 * 256 * 3 and rows[-1].parameters == 256 * 3 + 3


def test_aspp_branches_hand_computed(model):
    rows = {r.name: r for r in layer_costs(model, SHAPE, depth=2) if r.name.startswith("aspp/")}
    assert list(rows) == ["aspp/image_pooling", "aspp/aspp0", "aspp/aspp1", "aspp/aspp2",
                          "aspp/aspp3", "aspp/concat_projection"]
    cin = 80  # layer_18 at depth multiplier 0.25
    assert rows["aspp/image_pooling"].madds == cin * 256  # on the 1x1 pooled map
    assert rows["aspp/aspp0"].madds == 25 * cin * 256
    # Separable branch: depthwise 3x3 + pointwise, on 5x5 positions.
    assert rows["aspp/aspp1"].madds == 25 * 9 * cin + 25 * cin * 256
    assert rows["aspp/aspp1"].parameters == 9 * cin + 2 * cin + cin * 256 + 2 * 256
    # Projection: [aspp0..aspp3] on 5x5 positions; the pooled branch's share on its
    # 1x1 map (a per-image bias), not on its 5x5 resize.
    assert rows["aspp/concat_projection"].madds == 25 * 4 * 256 * 256 + 256 * 256


def test_space_to_batch_pads_each_atrous_branch(model):
    rows = {r.name: r.madds for r in layer_costs(model, SHAPE, space_to_batch=True, depth=2)}
    cin = 80
    # TF1 ran rate r on r·ceil(5/r) positions per axis: 6, 12, 18.
    for branch, rate in (("aspp/aspp1", 6), ("aspp/aspp2", 12), ("aspp/aspp3", 18)):
        assert rows[branch] == rate * rate * 9 * cin + 25 * cin * 256
    assert rows["aspp/aspp0"] == 25 * cin * 256


def test_flops_script_prints_rows_and_total(model):
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "flops.py"), "--depth_multiplier=0.25",
         "--num_classes=3", "--atrous_rates=6,12,18", "--input_size=65", "--depth=2"],
        capture_output=True, text=True, timeout=120, cwd=REPO)
    assert result.returncode == 0, result.stderr
    assert "aspp/aspp1" in result.stdout and "MobilenetV2/expanded_conv_16.project" in result.stdout
    assert re.search(r"^logits\.semantic +771 +0\.0 ", result.stdout, re.M)
    total = f"Total: {count_parameters(model):,} trainable parameters, "
    assert total + f"{count_madds(model, SHAPE) / 1e9:.3f} B MAdds." in result.stdout
