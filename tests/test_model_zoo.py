"""The rest of the original's model zoo: MobileNetV3 (LR-ASPP), MobileNet-EdgeTPU and the
Dense Prediction Cell, pinned by hand-derived shapes and the original's real EdgeTPU file."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest
from conftest import run_like_the_original_demo
from data_test_utils import records_without_descriptor
from layer_test_utils import he_scale_weights, run_layer_test

from deeplab.analysis.flops import count_madds
from deeplab.backbones import MobileNetV3
from deeplab.config import ModelConfig
from deeplab.layers.aspp import ASPP
from deeplab.layers.decoder import Decoder
from deeplab.layers.dense_prediction_cell import (
    DensePredictionCell,
    parse_cell,
    pyramid_pooling_arguments,
)
from deeplab.layers.squeeze_excite import SqueezeExcite
from deeplab.model import LOGITS_LAYER, build_deeplab
from deeplab.ops import resize_bilinear
from deeplab.weights.scopes import scope_targets

# The original's MobileNetV3 Cityscapes flags (model_zoo.md), at a small crop.
LR_ASPP = dict(image_pooling_stride=(4, 5), aspp_convs_filters=128,
               aspp_with_concat_projection=False, aspp_with_squeeze_and_excitation=True,
               decoder_use_sum_merge=True, decoder_filters=19, decoder_output_is_logits=True,
               image_se_uses_qsigmoid=True, decoder_output_stride=(8,), output_stride=32,
               num_classes=19)


# === Backbones: end points and widths derived by hand from slim's conv defs ===
@pytest.mark.parametrize("variant, output_stride, expected", [
    # large_seg: layer_4 = 24*3 = 72, layer_7 = 40*3 = 120, layer_13 = 112*6 = 672
    # depthwise outputs; last conv 960 / 2 = 480.
    ("large_seg", 32, {"features": (17, 480), "stride_4": (129, 72), "stride_8": (65, 120),
                       "stride_16": (33, 672)}),
    # small_seg: layer_2 = 16 (expansion 1), layer_4 = 24*88/24 = 88, layer_9 = 48*3 = 144;
    # last conv 576 / 2 = 288.
    ("small_seg", 16, {"features": (33, 288), "stride_4": (129, 16), "stride_8": (65, 88),
                       "stride_16": (33, 144)}),
    ("edgetpu", 8, {"features": (65, 1280)}),
])
def test_mobilenet_v3_end_points_at_513(variant, output_stride, expected):
    net = MobileNetV3(variant, output_stride=output_stride)
    out = net(keras.ops.zeros((1, 513, 513, 3)))
    assert {k: (v.shape[1], v.shape[3]) for k, v in out.items()} == expected


def test_mobilenet_v3_blocks_as_slim_builds_them():
    net = MobileNetV3("large_seg")
    layers = {layer.name: layer for layer in net.layers}
    # expanded_conv_3: 24 -> 72 expansion, 5x5 depthwise, SE squeezing 72 / 4 = 18 -> 24
    # (multiple of 8, never below 90 %), hard sigmoid gate, ReLU inside.
    se = layers["expanded_conv_3.squeeze_excite"]
    assert tuple(se.squeeze.conv.kernel.shape) == (1, 1, 72, 24)
    assert tuple(se.excite.conv.kernel.shape) == (1, 1, 24, 72)
    assert se.excite.activation == "hard_sigmoid" and se.squeeze.conv.use_bias
    assert tuple(layers["expanded_conv_3.depthwise"].conv.kernel.shape)[:2] == (5, 5)
    assert layers["expanded_conv_3.expand"].activation == "relu"
    assert layers["expanded_conv_6.expand"].activation == "hard_swish"
    assert layers["Conv"].activation == "hard_swish"
    # The halved last block: 112 -> 336 -> 80, then 80 -> 480 -> 80 twice, 480 last.
    assert layers["expanded_conv_12.expand"].filters == 336
    assert layers["expanded_conv_13.expand"].filters == 480
    assert layers["Conv_1"].filters == 480
    # Expansion 1: no expand conv; 16 -> 16 at stride 1 keeps the residual add.
    assert "expanded_conv.expand" not in layers
    assert isinstance(layers["expanded_conv"], keras.layers.Add)
    assert isinstance(layers["expanded_conv_14"], keras.layers.Add)
    assert "expanded_conv_12" not in layers  # stride 2: no residual


def test_edgetpu_fused_blocks_and_slim_width():
    net = MobileNetV3("edgetpu", depth_multiplier=0.75, output_stride=16)
    layers = {layer.name: layer for layer in net.layers}
    # Fused: a 3x3 stride-2 expand conv (16 -> 128), no depthwise; the first fused block
    # (expansion 1) is its 1x1 projection only. 32 * 0.75 = 24 stem, 48 * 0.75 -> 40.
    assert layers["Conv"].filters == 24
    assert "expanded_conv.expand" not in layers and "expanded_conv.depthwise" not in layers
    assert layers["expanded_conv_1.expand"].kernel_size == 3
    assert layers["expanded_conv_1.expand"].strides == 2
    assert "expanded_conv_1.depthwise" not in layers
    assert layers["expanded_conv_5.project"].filters == 40
    assert "expanded_conv_13" not in layers  # residual=False in V3_EDGETPU
    # The released slim file keeps 1280 channels at the last conv (not 1280 * 0.75).
    assert layers["Conv_1"].filters == 1280


def test_squeeze_excite_layer(tmp_path):
    layer, out = run_layer_test(SqueezeExcite, dict(squeeze_channels=8), (2, 5, 5, 16),
                                (2, 5, 5, 16), tmp_path)
    x = np.random.default_rng(1).normal(size=(2, 5, 5, 16)).astype("float32")
    pooled = x.mean(axis=(1, 2), keepdims=True)
    squeeze = np.maximum(pooled @ np.asarray(layer.squeeze.conv.kernel)[0, 0]
                         + np.asarray(layer.squeeze.conv.bias), 0)
    gate = np.clip(squeeze @ np.asarray(layer.excite.conv.kernel)[0, 0]
                   + np.asarray(layer.excite.conv.bias) + 3, 0, 6) * 0.16667
    np.testing.assert_allclose(layer(x), x * gate, rtol=1e-5, atol=1e-6)


# === LR-ASPP through the original's flags ===
def test_lr_aspp_gate_multiplies_the_projection_by_hand():
    aspp = ASPP(4, image_pooling=True, concat_projection=False, squeeze_and_excitation=True,
                gating="hard_sigmoid")
    x = np.random.default_rng(0).normal(size=(1, 9, 9, 6)).astype("float32")
    out = np.asarray(aspp(x, training=False))
    pool = aspp.pooling_branch
    assert pool.bn is None and pool.conv.use_bias  # the gate: bias, no BN
    gate = np.clip(x.mean(axis=(1, 2), keepdims=True) @ np.asarray(pool.conv.kernel)[0, 0]
                   + np.asarray(pool.conv.bias) + 3, 0, 6) * 0.16667
    np.testing.assert_allclose(out, np.asarray(aspp.aspp0(x, training=False)) * gate,
                               rtol=1e-5, atol=1e-6)
    assert aspp.compute_output_shape((1, 9, 9, 6)) == (1, 9, 9, 4)


def test_sum_merge_decoder_output_is_logits_by_hand():
    decoder = Decoder(filters=5, sum_merge=True, output_is_logits=True)
    rng = np.random.default_rng(0)
    features = rng.normal(size=(1, 5, 5, 8)).astype("float32")
    low = rng.normal(size=(1, 9, 9, 3)).astype("float32")
    out = np.asarray(decoder([features, low]))
    projection, conv = decoder.projections[0], decoder.convs[0]
    assert [u.name for u in (projection, conv)] == ["feature_projection0", "decoder_conv0"]
    assert projection.bn is None and conv.bn is None and conv.activation is None

    def linear(unit, x):
        return x @ np.asarray(unit.conv.kernel)[0, 0] + np.asarray(unit.conv.bias)

    resized = np.asarray(resize_bilinear(features, (9, 9)))
    np.testing.assert_allclose(out, linear(conv, resized) + linear(projection, low), rtol=1e-5,
                               atol=1e-5)


def test_sum_merge_decoder_with_batch_norm(tmp_path):
    run_layer_test(Decoder, dict(filters=8, sum_merge=True), [(1, 5, 5, 16), (1, 9, 9, 4)],
                   (1, 9, 9, 8), tmp_path)
    decoder = Decoder(filters=8, sum_merge=True)
    assert [c.name for c in decoder.convs] == ["decoder_split_sep_conv0"]
    assert decoder.projection_filters == 8  # the original: equal to decoder_filters


@pytest.mark.parametrize("variant", ["mobilenet_v3_large_seg", "mobilenet_v3_small_seg"])
def test_lr_aspp_model_has_no_logits_conv_and_original_scopes(variant):
    model = build_deeplab(model_variant=variant, crop_size=(129, 257),
                          image_pooling_crop_size=(97, 97), **LR_ASPP)
    assert LOGITS_LAYER not in [layer.name for layer in model.layers]
    assert model(np.zeros((1, 129, 257, 3), "float32")).shape == (1, 129, 257, 19)
    scopes = scope_targets(model)
    head = sorted(s for s in scopes if not s.startswith("MobilenetV3/"))
    assert head == ["aspp0", "decoder/decoder_conv0", "decoder/feature_projection0",
                    "image_pooling"]
    assert scopes["image_pooling"].bn is None and scopes["decoder/decoder_conv0"].bn is None
    assert "MobilenetV3/expanded_conv_3/squeeze_excite/Conv_1" in scopes


@pytest.mark.parametrize("fields, message", [
    (dict(image_se_uses_qsigmoid=True), "set aspp_with_squeeze_and_excitation too"),
    (dict(aspp_with_squeeze_and_excitation=True, add_image_level_feature=False),
     "needs add_image_level_feature"),
    (dict(decoder_use_sum_merge=True), "set decoder_output_stride"),
    (dict(decoder_output_is_logits=True, decoder_use_sum_merge=True,
          decoder_output_stride=(4,)), r"decoder_filters \(256\) must equal num_classes"),
    (dict(decoder_output_is_logits=True, decoder_output_stride=(4,)),
     "needs decoder_use_sum_merge"),
    (dict(model_variant="mobilenet_v3_small_seg", divisible_by=16), "mobilenet_v2 only"),
    (dict(model_variant="mobilenet_edgetpu", decoder_output_stride=(4,)),
     r"has decoder end points at strides \(\)"),
    (dict(dense_prediction_cell_json="missing.json"), "does not exist"),
    (dict(dense_prediction_cell_json="x.json", head="ksac", atrous_rates=(1, 2)),
     "does not combine with head='ksac'"),
])
def test_model_zoo_options_are_checked(fields, message):
    with pytest.raises(ValueError, match=message):
        ModelConfig(**fields)


# === Dense Prediction Cell (the original's dense_prediction_cell_test) ===
@pytest.mark.parametrize("crop, grid, expected", [
    ((513, 513), (4, 4), ([33, 33], [9, 9])),
    ((257, 257), (1, 1), ([17, 17], [17, 17])),
    ((513, 513), (2, 2), ([33, 33], [17, 17])),
])
def test_pyramid_pooling_arguments(crop, grid, expected):
    assert pyramid_pooling_arguments(crop, 16, grid) == expected


def test_dpc_parses_and_builds_with_and_without_pooling_crop(tmp_path):
    cell = [{"op": "conv", "kernel": [3, 3], "rate": [9, 6], "input": -1},
            {"op": "pyramid_pooling", "grid_size": [1, 1], "input": 0}]
    parsed = parse_cell(cell)
    assert parsed[0]["kernel"] == 3 and parsed[0]["rate"] == [9, 6]
    for pooling_crop in (None, (129, 129)):
        layer = DensePredictionCell(cell, crop_size=(513, 513),
                                    image_pooling_crop_size=pooling_crop)
        assert layer(np.ones((2, 33, 33, 5), "float32")).shape == (2, 33, 33, 256)
    # grid 1x1 over a 129 crop: a 9x9 pool, resized back to 33x33.
    assert layer.pool_kernels == [None, [9, 9]]
    assert layer.branches[0].depthwise.conv.dilation_rate == (9, 6)
    run_layer_test(DensePredictionCell, dict(cell=cell, crop_size=(65, 65), reduction_size=8,
                                             concat_channels=8),
                   (1, 5, 5, 4), (1, 5, 5, 8), tmp_path)


@pytest.mark.parametrize("cell, message", [
    ([], "non-empty list"),
    ([{"op": "deconv"}], "'op' must be one of"),
    ([{"op": "conv", "kernel": 5}], "kernel' must be 1 or 3"),
    ([{"op": "conv", "input": 0}], "'input' must be -1"),
    ([{"op": "pyramid_pooling"}], "needs 'grid_size'"),
])
def test_dpc_bad_cells_are_named(cell, message):
    with pytest.raises(ValueError, match=message):
        parse_cell(cell)


def test_packaged_cityscapes_dpc_on_xception_71_keeps_the_original_names():
    model = build_deeplab(
        model_variant="xception_71", decoder_output_stride=(4,), num_classes=19,
        dense_prediction_cell_json="deeplab/core/dense_prediction_cell_branch5_top1_"
        "cityscapes.json")  # the original's path: resolved to the packaged copy
    assert model.config.head == "dpc"
    cell = model.get_layer("dpc")
    assert [b.depthwise.conv.dilation_rate for b in cell.branches] == [
        (1, 6), (18, 15), (6, 3), (1, 1), (6, 21)]
    assert [op["input"] for op in cell.cell] == [-1, 0, 1, 0, 0]
    scopes = scope_targets(model)
    assert {f"meta_architecture/branch{i}_{part}" for i in range(5)
            for part in ("depthwise", "pointwise")} <= set(scopes)
    assert "meta_architecture/concat_projection" in scopes
    assert "meta_architecture" in model.last_layer_original_scopes()
    assert model(np.zeros((1, 65, 65, 3), "float32")).shape == (1, 65, 65, 19)


def test_dpc_on_mobilenet_v2_from_a_json_file(tmp_path):
    """model_test.py's DPC case: a 2-op cell on mobilenet_v2."""
    path = tmp_path / "cell.json"
    path.write_text(json.dumps([{"op": "conv", "kernel": 3, "rate": [1, 3], "input": -1},
                                {"op": "conv", "kernel": 1, "input": 0}]))
    model = build_deeplab(dense_prediction_cell_json=str(path), num_classes=3)
    assert model.get_layer("dpc").branches[1].kernel_size == 1
    assert model(np.zeros((2, 33, 33, 3), "float32")).shape == (2, 33, 33, 3)


# === TF1 checkpoints, exports, QAT ===
@pytest.mark.parametrize("fields", [
    dict(model_variant="mobilenet_v3_small_seg", crop_size=(65, 65), **LR_ASPP),
    dict(model_variant="mobilenet_v2", head="dpc", crop_size=(65, 65), num_classes=3),
], ids=["mnv3_lr_aspp", "dpc"])
def test_tf1_checkpoint_round_trip(fields, tmp_path):
    from deeplab.weights.checkpoint_export import export_tf1_checkpoint
    from deeplab.weights.checkpoint_import import import_tf1_checkpoint

    model = he_scale_weights(build_deeplab(**fields), seed=4)
    prefix = export_tf1_checkpoint(model, tmp_path / "model.ckpt")
    fresh = build_deeplab(**fields)
    report = import_tf1_checkpoint(fresh, prefix, strict=True)
    assert not report.missing_in_model and not report.unused_in_file
    x = np.random.default_rng(0).uniform(0, 255, (1, 65, 65, 3)).astype("float32")
    np.testing.assert_allclose(fresh(x), model(x), atol=1e-4)


@pytest.mark.slow
@pytest.mark.parametrize("fields, expected_op", [
    (dict(model_variant="mobilenet_v3_small_seg", **LR_ASPP), "HARD_SWISH"),
    (dict(model_variant="mobilenet_v2", head="dpc", num_classes=5), "DEPTHWISE_CONV_2D"),
], ids=["mnv3_lr_aspp", "dpc"])
def test_model_zoo_exports_to_tflite_float_and_int8_with_builtins_only(fields, expected_op):
    from deeplab.export.tflite import convert_to_tflite, op_names

    model = he_scale_weights(build_deeplab(crop_size=(65, 65), **fields), seed=5)
    rng = np.random.default_rng(0)
    images = [rng.uniform(0, 255, (65, 65, 3)).astype("float32") for _ in range(2)]
    want = np.asarray(model(images[0][None]))
    for quantization in ("float", "int8"):
        flatbuffer = convert_to_tflite(model, (65, 65), quantization, "logits",
                                       lambda: images)
        ops = op_names(flatbuffer)
        assert expected_op in ops and "SPACE_TO_BATCH_ND" not in ops
        assert not any(op.startswith(("FLEX", "CUSTOM")) for op in ops)
        if quantization == "float":  # the DPC's (1, 3) rates as one dilated depthwise op
            from ai_edge_litert.interpreter import Interpreter

            it = Interpreter(model_content=flatbuffer)
            it.allocate_tensors()
            it.set_tensor(it.get_input_details()[0]["index"], images[0][None])
            it.invoke()
            got = it.get_tensor(it.get_output_details()[0]["index"])
            assert np.abs(got - want).max() <= 1e-3 * (want.max() - want.min())


@pytest.mark.slow
def test_saved_model_serves_edgetpu_and_dpc(tmp_path):
    import tensorflow as tf

    from deeplab.export.saved_model import export_saved_model

    for name, fields in (("edgetpu", dict(model_variant="mobilenet_edgetpu", output_stride=32,
                                          depth_multiplier=0.75, aspp_convs_filters=128)),
                         ("dpc", dict(model_variant="mobilenet_v2", head="dpc"))):
        model = he_scale_weights(build_deeplab(num_classes=4, crop_size=(129, 129), **fields))
        target = export_saved_model(model, tmp_path / name)
        serve = tf.saved_model.load(str(target)).signatures["serving_default"]
        image = np.random.default_rng(0).integers(0, 256, (1, 129, 129, 3), dtype=np.uint8)
        served = serve(tf.constant(image))
        logits = np.asarray(model(image.astype("float32")))
        np.testing.assert_allclose(served["semantic_probabilities"].numpy(),
                                   tf.nn.softmax(logits).numpy(), atol=1e-4)
        assert (served["semantic_predictions"].numpy() == logits.argmax(-1)).mean() > 0.999


def test_quantization_aware_edgetpu_builds_and_squeeze_excite_is_refused():
    model = build_deeplab(model_variant="mobilenet_edgetpu", output_stride=32,
                          quantize_delay_step=0, num_classes=3)
    assert model(np.zeros((1, 65, 65, 3), "float32"), training=True).shape == (1, 65, 65, 3)
    with pytest.raises(ValueError, match="SqueezeExcite"):
        build_deeplab(model_variant="mobilenet_v3_small_seg", quantize_delay_step=0)


# === Multiply-adds against the original's model zoo ===
# Conv and depthwise multiply-adds (papers.md conventions) at 513x513, the input of the
# released EdgeTPU Cityscapes files, with the image-pooling projection counted on its
# 33x33 (17x17) resize as the papers do (ASPP runs it on the 1x1 map). The table gives
# 0.1 B precision.
def _nominal_madds(model, features, filters):
    return count_madds(model, (1, 513, 513, 3)) + (features * features - 1) * filters * filters


EDGETPU = dict(model_variant="mobilenet_edgetpu", num_classes=19)
SLIM = dict(EDGETPU, depth_multiplier=0.75, aspp_convs_filters=128)


@pytest.mark.parametrize("fields, output_stride, published", [
    (EDGETPU, 16, 7.1e9), (SLIM, 16, 4.3e9), (EDGETPU, 32, 5.6e9),
], ids=["edgetpu_os16", "slim_os16", "edgetpu_os32"])
def test_edgetpu_madds_match_the_model_zoo(fields, output_stride, published):
    model = build_deeplab(output_stride=output_stride, **fields)
    madds = _nominal_madds(model, 513 // output_stride + 1, model.config.aspp_convs_filters)
    print(f"{fields.get('depth_multiplier', 1.0)} OS {output_stride}: {madds / 1e9:.3f} B "
          f"(published {published / 1e9} B)")
    assert abs(madds / published - 1) < 0.02


@pytest.mark.xfail(strict=True, reason=(
    "measured 3.428 B against the published 3.5 B: 2.07 % under (the full model at OS 32 "
    "is 2.00 % under, both slim and full are within 0.4 % at OS 16); the original's "
    "counting protocol for these rows is not documented"))
def test_edgetpu_slim_madds_at_output_stride_32():
    model = build_deeplab(output_stride=32, **SLIM)
    published = 3.5e9
    madds = _nominal_madds(model, 17, model.config.aspp_convs_filters)
    assert abs(madds / published - 1) < 0.02


# The MobileNetV3 rows (model_zoo.md, Cityscapes 1025x2049, eval OS 32, LR-ASPP flags) are
# not conv multiply-adds: ours count 7.58 B (large) and 1.96 B (small). TensorFlow
# profiler float operations of the same graph give 15.77 B for the large model, 1.1 % from
# the published 15.95 B.
CITYSCAPES_INPUT = (1, 1025, 2049, 3)


def _mobilenet_v3_cityscapes(variant):
    return build_deeplab(model_variant=variant, crop_size=(1025, 2049),
                         image_pooling_crop_size=(769, 769), **LR_ASPP)


def test_mobilenet_v3_large_flops_match_the_model_zoo():
    from deeplab.analysis.flops import count_profiler_flops

    model = _mobilenet_v3_cityscapes("mobilenet_v3_large_seg")
    flops = count_profiler_flops(model, CITYSCAPES_INPUT)
    print(f"MNv3-L at 1025x2049: {flops / 1e9:.3f} B profiler float ops (published 15.95 B), "
          f"{count_madds(model, CITYSCAPES_INPUT) / 1e9:.3f} B conv multiply-adds")
    assert abs(flops / 15.95e9 - 1) < 0.02


@pytest.mark.xfail(strict=True, reason=(
    "measured 4.17 B profiler float ops (1.96 B conv multiply-adds) against the published "
    "4.63 B: 9.9 % under, while the large model's count is within 1.1 %; not explained by "
    "the head (its convs are under 0.1 B) or the counting convention"))
def test_mobilenet_v3_small_flops_match_the_model_zoo():
    from deeplab.analysis.flops import count_profiler_flops

    model = _mobilenet_v3_cityscapes("mobilenet_v3_small_seg")
    assert abs(count_profiler_flops(model, CITYSCAPES_INPUT) / 4.63e9 - 1) < 0.02


# === The model zoo's command lines through the binaries ===
MNV3_FLAGS = ("--model_variant=mobilenet_v3_small_seg --image_pooling_crop_size=769,769 "
              "--image_pooling_stride=4,5 --add_image_level_feature=1 --aspp_convs_filters=128 "
              "--aspp_with_concat_projection=0 --aspp_with_squeeze_and_excitation=1 "
              "--decoder_use_sum_merge=1 --decoder_filters=19 --decoder_output_is_logits=1 "
              "--image_se_uses_qsigmoid=1 --decoder_output_stride=8 --output_stride=32")
EDGETPU_SLIM_FLAGS = ("--model_variant=mobilenet_edgetpu --decoder_output_stride= "
                      "--aspp_convs_filters=256 --depth_multiplier=0.75 --aspp_convs_filters=128 "
                      "--output_stride=32")


@pytest.fixture(scope="module")
def cityscapes_records(tmp_path_factory):
    """Synthetic records under Cityscapes' split names without a dataset.json, so
    ``--dataset=cityscapes`` gives the original's 19-class descriptor."""
    return records_without_descriptor(tmp_path_factory.mktemp("cityscapes") / "tfrecord",
                                      {"train_fine": 2, "val_fine": 1}, 64, 96)


@pytest.mark.slow
@pytest.mark.parametrize("flags, crop", [(MNV3_FLAGS, 769), (EDGETPU_SLIM_FLAGS, 513)],
                         ids=["mobilenet_v3_small_lr_aspp", "edgetpu_slim"])
def test_model_zoo_command_lines_train_eval_export(flags, crop, cityscapes_records, tmp_path):
    import subprocess
    import sys

    env = {"TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": "",
           "PATH": "/usr/bin:/bin", "TF_ENABLE_ONEDNN_OPTS": "0"}

    def run(binary, *args):
        result = subprocess.run([sys.executable, "-m", f"deeplab.cli.{binary}", *args,
                                 *flags.split()], capture_output=True, text=True, env=env,
                                timeout=900)
        assert result.returncode == 0, result.stderr[-4000:]
        return result

    data = [f"--dataset_dir={cityscapes_records}", "--dataset=cityscapes"]
    run("train", *data, "--train_split=train_fine", f"--train_logdir={tmp_path / 'train'}",
        f"--train_crop_size={crop},{crop}", "--train_batch_size=1",
        "--training_number_of_steps=2", "--save_interval_steps=2")
    run("eval", *data, "--eval_split=val_fine", f"--checkpoint_dir={tmp_path / 'train'}",
        f"--eval_logdir={tmp_path / 'eval'}", f"--eval_crop_size={crop},{crop}",
        "--max_number_of_evaluations=1")
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert len(metrics["per_class_iou"]) == 19 and metrics["step"] == 2
    graph_path = tmp_path / "export" / "frozen_inference_graph.pb"
    run("export_model", f"--checkpoint_path={tmp_path / 'train'}",
        f"--export_path={graph_path}", "--num_classes=19", f"--crop_size={crop}",
        f"--crop_size={crop}", "--inference_scales=1.0")
    image = np.random.default_rng(0).integers(0, 255, (1, 70, 90, 3), dtype=np.uint8)
    labels, _ = run_like_the_original_demo(graph_path, image)
    assert labels.shape == (1, 70, 90) and labels.max() < 19
    tflite = tmp_path / "model.tflite"
    run("convert_to_tflite", f"--checkpoint_path={tmp_path / 'train'}",
        f"--crop_size={crop},{crop}", f"--output_tflite_path={tflite}")
    from deeplab.export.tflite import op_names

    ops = op_names(tflite.read_bytes())
    assert "SPACE_TO_BATCH_ND" not in ops and "ARG_MAX" in ops


def test_dpc_config_keeps_its_cell_so_a_saved_run_rebuilds_without_the_json(tmp_path):
    path = tmp_path / "cell.json"
    cell = [{"op": "conv", "kernel": 3, "rate": [2, 4], "input": -1},
            {"op": "pyramid_pooling", "grid_size": [2, 2], "input": 0}]
    path.write_text(json.dumps(cell))
    config = ModelConfig(dense_prediction_cell_json=str(path), crop_size=(65, 65),
                         num_classes=3)
    assert config.head == "dpc" and config.dense_prediction_cell == parse_cell(cell)
    saved = json.loads(json.dumps(config.to_dict()))
    path.unlink()  # the run moved to a machine without the file
    model = build_deeplab(ModelConfig.from_dict(saved))
    assert model.get_layer("dpc").pool_kernels == [None, [3, 3]]  # 65 / (16 * 2) -> 3
    with pytest.raises(ValueError, match="does not exist"):
        ModelConfig(dense_prediction_cell_json=str(path))
