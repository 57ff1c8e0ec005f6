"""The NAS backbones (``nas_pnasnet``, ``nas_hnasnet``): the original's end-point shapes,
its variable names (exact TF1 round trip), scheduled drop path by hand, training with it,
eval, SavedModel and TFLite."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
from layer_test_utils import he_scale_weights

from deeplab.backbones.nas import NASNetwork
from deeplab.config import ModelConfig
from deeplab.layers.drop_path import DropPath, DropPathSchedule
from deeplab.model import build_deeplab
from deeplab.weights.checkpoint_export import export_tf1_checkpoint, original_variables
from deeplab.weights.checkpoint_import import import_tf1_checkpoint

REPO = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}


def test_end_point_shapes_are_the_originals_nas_network_test():
    # core/nas_network_test.py: PNAS cells on Auto-DeepLab's levels, 10 filters, 321x321.
    net = NASNetwork("pnasnet", levels=(0, 0, 0, 1, 2, 1, 2, 2, 3, 3, 2, 1), genotype="pnas",
                     num_conv_filters=10)
    names = ["conv2"] + [f"cell_{i}.cell_output" for i in range(12)]
    probe = keras.Model(net.input, [net.get_layer(n).output for n in names])
    shapes = [tuple(o.shape[1:]) for o in probe(np.zeros((1, 321, 321, 3), np.float32))]
    assert shapes == [(81, 81, 128), (81, 81, 50), (81, 81, 50), (81, 81, 50), (41, 41, 100),
                      (21, 21, 200), (41, 41, 100), (21, 21, 200), (21, 21, 200),
                      (11, 11, 400), (11, 11, 400), (21, 21, 200), (41, 41, 100)]


@pytest.mark.parametrize("variant, output_stride, head, features", [
    ("pnasnet", 16, False, (5, 5, 400)),
    ("pnasnet", 8, False, (9, 9, 200)),
    ("pnasnet", 32, False, (3, 3, 800)),
    ("hnasnet", 8, False, (9, 9, 200)),
    ("hnasnet", 16, True, (5, 5, 2048)),  # the head strides once, then goes atrous
])
def test_features_and_decoder_end_points(variant, output_stride, head, features):
    net = NASNetwork(variant, output_stride=output_stride, use_classification_head=head)
    outputs = net(np.zeros((1, 65, 65, 3), np.float32))
    assert tuple(outputs["features"].shape[1:]) == features
    # The original's decoder end points: pnasnet Stem / Cell_3 / Cell_7, hnasnet Cell_2 /
    # Cell_5 / Cell_7.
    assert outputs["stride_4"].shape[1] == 17
    if variant == "hnasnet":
        assert [outputs[f"stride_{s}"].shape[1:] for s in (4, 8, 16)] == [
            (17, 17, 100), (9, 9, 200), (5, 5, 400)]


def test_strides_the_cells_cannot_give_are_refused_with_the_flag_to_use():
    with pytest.raises(ValueError, match="nas_hnasnet: its cells end at output stride 8; "
                       "output_stride 16 needs --nas_use_classification_head"):
        build_deeplab(model_variant="nas_hnasnet")
    with pytest.raises(ValueError, match="keeps the stride-32 cells at output stride 16: "
                       "give --output_stride=16"):
        NASNetwork("pnasnet", output_stride=32, remove_os32_stride=True)
    with pytest.raises(ValueError, match="levels move one at a time"):
        NASNetwork("pnasnet", levels=(0, 2))


@pytest.mark.slow
def test_remove_os32_stride_keeps_hnasnets_top_cells_at_16():
    plain = NASNetwork("hnasnet", output_stride=8, num_conv_filters=4)
    kept = NASNetwork("hnasnet", output_stride=8, num_conv_filters=4, remove_os32_stride=True)
    image = np.zeros((1, 65, 65, 3), np.float32)

    def cell_sizes(net):
        probe = keras.Model(net.input, [net.get_layer(f"cell_{i}.cell_output").output
                                        for i in range(12)])
        return [o.shape[1] for o in probe(image)]

    assert cell_sizes(plain)[8:10] == [3, 3] and cell_sizes(kept)[8:10] == [5, 5]
    assert tuple(kept(image)["features"].shape) == tuple(plain(image)["features"].shape)


@pytest.mark.parametrize("fields", [
    dict(model_variant="nas_pnasnet", output_stride=16, atrous_rates=(6, 12, 18),
         decoder_output_stride=(4,), nas_stem_output_num_conv_filters=8),
    pytest.param(dict(model_variant="nas_hnasnet", output_stride=8, atrous_rates=(12, 24, 36),
                      decoder_output_stride=(4,), nas_stem_output_num_conv_filters=8,
                      nas_use_classification_head=False), marks=pytest.mark.slow),
    pytest.param(dict(model_variant="nas_pnasnet", output_stride=16,
                      nas_use_classification_head=True, nas_stem_output_num_conv_filters=8),
                 marks=pytest.mark.slow),
])
def test_tf1_names_round_trip_exactly(fields, tmp_path):
    model = he_scale_weights(build_deeplab(num_classes=5, **fields), seed=1)
    names = original_variables(model)
    scope = fields["model_variant"][4:]
    expected = {f"{scope}/conv0/weights", f"{scope}/conv0_bn/gamma",
                f"{scope}/cell_0/beginning_bn/moving_variance", f"{scope}/cell_1/prev_1x1/weights",
                "logits/semantic/weights"}
    if scope == "pnasnet":
        expected |= {"pnasnet/cell_0/comb_iter_0/left/separable_5x5_1/depthwise_weights",
                     "pnasnet/cell_0/comb_iter_0/left/separable_5x5_1/pointwise_weights",
                     "pnasnet/cell_0/comb_iter_0/left/bn_sep_5x5_1/beta"}
    else:
        expected |= {"hnasnet/cell_0/comb_iter_0/left/atrous_5x5/weights",
                     "hnasnet/cell_0/comb_iter_0/left/bn_atr_5x5/moving_mean"}
    if fields.get("nas_use_classification_head"):
        expected |= {"pnasnet/downsample_os32_conv/weights", "pnasnet/classification_head_bn/beta"}
    assert expected <= set(names), sorted(expected - set(names))
    # Every weight of the model has an original name, and no name is used twice.
    assert len(names) == len(model.weights)
    prefix = export_tf1_checkpoint(model, tmp_path / "model.ckpt-7")
    fresh = build_deeplab(model.config)
    report = import_tf1_checkpoint(fresh, prefix, strict=True)
    assert not report.unused_in_file and not report.missing_in_model
    for mine, theirs in zip(model.weights, fresh.weights, strict=True):
        np.testing.assert_array_equal(np.asarray(mine), np.asarray(theirs), err_msg=mine.path)
    image = np.random.default_rng(0).integers(0, 256, (1, 41, 49, 3), dtype=np.uint8)
    np.testing.assert_array_equal(np.asarray(model(image)), np.asarray(fresh(image)))
    # A checkpoint by another name: the NAS model is read from its variables.
    from deeplab.weights.zoo_import import infer_model_fields

    given = {"atrous_rates": fields.get("atrous_rates", ())}
    inferred = ModelConfig(**infer_model_fields(prefix, given))
    for name in ("model_variant", "nas_stem_output_num_conv_filters", "num_classes",
                 "nas_use_classification_head", "decoder_output_stride"):
        assert getattr(inferred, name) == getattr(model.config, name), name


def test_drop_path_keep_probability_and_output_by_hand():
    schedule = DropPathSchedule()
    layer = DropPath(5, 12, schedule)
    x = np.ones((4000, 1, 1, 2), np.float32)
    np.testing.assert_array_equal(layer(x, training=True), x)  # keep_prob 1: the identity
    schedule.update(0.6, 150, 300)
    # cell 6 of 12 at keep 0.6: 1 - 6/12 * 0.4 = 0.8; halfway through: 1 - 0.5 * 0.2 = 0.9.
    assert float(layer.keep_probability()) == pytest.approx(0.9)
    out = np.asarray(layer(x, training=True))
    kept = out[:, 0, 0, 0] > 0
    np.testing.assert_allclose(out[kept], 1 / 0.9, rtol=1e-6)
    np.testing.assert_array_equal(out[~kept], 0)
    assert np.array_equal(out[:, ..., 0], out[:, ..., 1])  # whole examples
    assert abs(kept.mean() - 0.9) < 0.03
    np.testing.assert_array_equal(layer(x, training=False), x)
    schedule.update(0.6, 900, 300)  # past the end: the cell's own keep, 0.8
    assert float(layer.keep_probability()) == pytest.approx(0.8)
    assert not layer.weights  # the schedule is not a weight of the model


@pytest.mark.slow  # ~1 min: a NAS graph of ~600 layers traced for training and for eval
def test_nas_trains_with_drop_path_then_evaluates(tiny_data, tmp_path):
    from deeplab.training.train_config import TrainConfig
    from deeplab.training.trainer import Trainer

    model = ModelConfig(model_variant="nas_hnasnet", output_stride=8, num_classes=6,
                        nas_stem_output_num_conv_filters=4, atrous_rates=(),
                        decoder_output_stride=(4,), crop_size=(33, 33))
    trainer = Trainer(TrainConfig(model, str(tiny_data), str(tmp_path / "train"),
                                  train_crop_size=(33, 33), train_batch_size=2,
                                  training_number_of_steps=2, drop_path_keep_prob=0.7,
                                  optimizer="adam", save_interval_steps=2, seed=0),
                      log=lambda line: None)
    result = trainer.train()
    assert result["step"] == 2 and np.isfinite(result["loss"])
    schedule = trainer.model.backbone.drop_path_schedule
    # Set before each step from the step about to run: the last step ran at 1 / 2.
    assert float(schedule.keep_prob) == pytest.approx(0.7)
    assert float(schedule.progress) == pytest.approx(0.5)

    result = subprocess.run(
        [sys.executable, "-m", "deeplab.cli.eval", f"--checkpoint_path={tmp_path / 'train'}",
         f"--dataset_dir={tiny_data}", f"--eval_logdir={tmp_path / 'eval'}"],
        capture_output=True, text=True, env=ENV, cwd=REPO, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    assert re.search(r"^mIoU \d+\.\d+%", result.stdout, re.M), result.stdout[-2000:]


@pytest.mark.parametrize("fields, parameters, madds", [
    (dict(model_variant="nas_pnasnet", output_stride=16, atrous_rates=(6, 12, 18)),
     2_571_205, "9.46 B"),
    pytest.param(dict(model_variant="nas_hnasnet", output_stride=8, atrous_rates=(12, 24, 36)),
                 7_785_021, "16.23 B", marks=pytest.mark.slow),
])
def test_the_readme_counts(fields, parameters, madds):
    from deeplab.analysis.flops import count_madds, count_parameters

    model = build_deeplab(decoder_output_stride=(4,), **fields)
    assert count_parameters(model) == parameters
    measured = f"{count_madds(model, (1, 513, 513, 3)) / 1e9:.2f} B"
    assert measured == madds
    row = f"| {parameters:,} (backbone "
    assert row in (REPO / "README.md").read_text() and f"| {madds} |" in (
        REPO / "README.md").read_text()
