"""Quantization-aware training: the int8 arithmetic, the layers, the trainer, the export."""

from __future__ import annotations

import re

import keras
import numpy as np
import pytest
import tensorflow as tf
from layer_test_utils import he_scale_weights

from deeplab import quantization
from deeplab.config import ModelConfig
from deeplab.layers.conv_bn_act import ConvBNAct
from deeplab.model import build_deeplab
from deeplab.quantization import ActivationQuantizer, simulation
from deeplab.training.train_config import TrainConfig
from deeplab.training.trainer import Trainer


def round_half_up(x):
    return np.floor(x + 0.5)


# === The arithmetic ===
def test_weights_round_per_output_channel_symmetrically():
    kernel = np.array([[[[0.5, 0.3], [-1.0, 0.0], [0.25, -0.1]]]], np.float32)  # [1,1,3,2]
    got = quantization.fake_quant_weights(tf.constant(kernel)).numpy()
    for out, bound in ((0, 1.0), (1, 0.3)):
        scale = bound / 127  # TFLite's int8 per-channel weights: zero point 0, [-127, 127]
        expected = round_half_up(kernel[..., out] / scale) * scale
        np.testing.assert_allclose(got[..., out], expected, atol=1e-6)
    assert abs(got[0, 0, 0, 0] - 64 / 127) < 1e-6  # 0.5 -> level 63.5 rounds to 64


def test_depthwise_weights_round_per_channel():
    kernel = np.array([[[[0.5], [-0.02]]], [[[1.0], [0.011]]]], np.float32)  # [2,1,2,1]
    got = quantization.fake_quant_weights(tf.constant(kernel), depthwise=True).numpy()
    for channel, bound in ((0, 1.0), (1, 0.02)):
        scale = bound / 127
        expected = round_half_up(kernel[:, :, channel, 0] / scale) * scale
        np.testing.assert_allclose(got[:, :, channel, 0], expected, atol=1e-7)


def test_folding_batch_norm_into_the_conv_is_exact():
    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(size=(1, 6, 6, 4)), tf.float32)
    kernel = tf.constant(rng.normal(size=(3, 3, 4, 5)), tf.float32)
    gamma, beta, mean = (tf.constant(rng.normal(size=5), tf.float32) for _ in range(3))
    variance = tf.constant(rng.uniform(0.5, 2.0, 5), tf.float32)
    conv = tf.nn.conv2d(x, kernel, 1, "SAME")
    reference = tf.nn.batch_normalization(conv, mean, variance, beta, gamma, 1e-3)
    folded, bias = quantization.fold_batch_norm(kernel, gamma, beta, mean, variance, 1e-3)
    np.testing.assert_allclose(tf.nn.conv2d(x, folded, 1, "SAME") + bias, reference,
                               atol=1e-5)


def test_activation_range_starts_at_the_first_batch_then_moves_slowly():
    quantizer = ActivationQuantizer(decay=0.999)
    quantizer.build()
    assert (quantizer.minimum.numpy(), quantizer.maximum.numpy()) == (-6.0, 6.0)
    first = np.array([0.5, 2.0, 4.0], np.float32)  # min widened to contain 0
    quantizer(first, training=True)
    assert (quantizer.minimum.numpy(), quantizer.maximum.numpy()) == (0.0, 4.0)
    # The second batch weighs 0.9 (decay 1/10, the num_updates schedule), the 10th 0.5.
    out = quantizer(np.array([-2.0, 3.0, 8.0], np.float32), training=True).numpy()
    assert quantizer.minimum.numpy() == pytest.approx(0.1 * 0 + 0.9 * -2.0)
    assert quantizer.maximum.numpy() == pytest.approx(0.1 * 4 + 0.9 * 8.0)
    assert quantizer.observed.numpy() == 2
    # 256 levels over the range: 8.0 clips to the maximum, -2.0 to the (nudged) minimum.
    assert out[2] == pytest.approx(float(quantizer.maximum.numpy()), abs=0.02)
    assert out[0] == pytest.approx(float(quantizer.minimum.numpy()), abs=0.02)
    step = (quantizer.maximum.numpy() - quantizer.minimum.numpy()) / 255
    assert abs(out[1] - 3.0) <= step / 2 + 1e-6
    for _ in range(7):
        quantizer(np.array([-1.8, 7.6], np.float32), training=True)  # the range itself
    high = quantizer.maximum.numpy()
    quantizer(np.array([0.0, high + 10.0], np.float32), training=True)
    assert quantizer.maximum.numpy() == pytest.approx(0.5 * high + 0.5 * (high + 10.0))
    quantizer.observed.assign(10_000.0)  # the schedule has reached the decay
    before_max = quantizer.maximum.numpy()
    quantizer(np.array([0.0, before_max + 10.0], np.float32), training=True)
    assert quantizer.maximum.numpy() == pytest.approx(before_max + 0.001 * 10.0)  # 0.999
    # Inference reads the range; outside the simulation the layer is the identity.
    before = quantizer.minimum.numpy(), quantizer.maximum.numpy()
    quantizer(np.array([-50.0, 50.0], np.float32), training=False)
    values = np.array([-50.0, 0.123], np.float32)
    with simulation(False):
        same = quantizer(values, training=True).numpy()
    assert (quantizer.minimum.numpy(), quantizer.maximum.numpy()) == before
    np.testing.assert_array_equal(same, values)


# === The conv unit ===
def _prepared_unit(**kwargs):
    unit = ConvBNAct(6, 3, **kwargs)
    unit.build((2, 8, 8, 4))
    rng = np.random.default_rng(1)
    unit.bn.moving_mean.assign(rng.normal(size=6).astype("float32"))
    unit.bn.moving_variance.assign(rng.uniform(0.5, 2.0, 6).astype("float32"))
    unit.bn.gamma.assign(rng.uniform(0.5, 1.5, 6).astype("float32"))
    unit.bn.beta.assign(rng.normal(size=6).astype("float32"))
    quantization.prepare_model(unit)
    return unit


def test_conv_unit_simulates_int8_close_to_its_float_self():
    # BN momentum 0: after one training call the moving statistics are this batch's, so
    # inference sees the range the output quantizer learned.
    unit = _prepared_unit(activation="relu6", norm={"momentum": 0.0, "epsilon": 1e-3})
    x = tf.constant(np.random.default_rng(2).normal(size=(2, 8, 8, 4)), tf.float32)
    with simulation(False):
        expected = unit(x, training=False).numpy()
    unit(x, training=True)  # learns the output range (and updates BN as float would)
    with simulation(False):
        expected_after = unit(x, training=False).numpy()
    got = unit(x, training=False).numpy()
    step = (unit.output_quantizer.maximum.numpy() - unit.output_quantizer.minimum.numpy()) / 255
    assert not np.array_equal(expected, expected_after)  # BN statistics moved
    # Weight rounding adds about a step; never more than a few.
    assert np.abs(got - expected_after).max() <= 4 * step
    assert np.abs(got - expected_after).mean() <= step
    levels = (got - unit.output_quantizer.minimum.numpy()) / step
    assert np.abs(levels - np.round(levels)).max() < 0.05  # on the 256-level grid


def test_conv_unit_training_normalises_with_batch_statistics():
    """The folded kernel uses the moving variance; the correction restores batch
    normalisation, and the moving statistics update exactly as in float training."""
    float_unit, quantized_unit = _prepared_unit(), _prepared_unit()
    quantized_unit.set_weights(float_unit.get_weights())
    x = tf.constant(np.random.default_rng(3).normal(size=(2, 8, 8, 4)) * 3, tf.float32)
    with simulation(False):
        expected = float_unit(x, training=True).numpy()
    got = quantized_unit(x, training=True).numpy()
    step = (quantized_unit.output_quantizer.maximum.numpy()
            - quantized_unit.output_quantizer.minimum.numpy()) / 255
    assert np.abs(got - expected).max() <= 4 * step
    for name in ("moving_mean", "moving_variance"):
        np.testing.assert_allclose(getattr(quantized_unit.bn, name).numpy(),
                                   getattr(float_unit.bn, name).numpy(), rtol=1e-5)


# === The model ===
def tiny_config(**fields):
    values = dict(num_classes=5, depth_multiplier=0.35, decoder_output_stride=(4,),
                  crop_size=(33, 33))
    values.update(fields)
    return ModelConfig(**values)


def test_minus_one_builds_the_float_model_and_a_float_checkpoint_fits_the_qat_one():
    float_model = build_deeplab(tiny_config())
    qat_model = build_deeplab(tiny_config(quantize_delay_step=0))
    assert quantization.quantizers(float_model) == []
    float_paths = [w.path for w in float_model.weights]
    extra = sorted(set(w.path for w in qat_model.weights) - set(float_paths))
    assert set(float_paths) <= {w.path for w in qat_model.weights}
    assert extra and all(p.rsplit("/", 2)[-2].endswith("_quantizer")
                         and p.rsplit("/", 1)[-1] in ("min", "max", "observed") for p in extra)
    # Same weights, simulation off: the same function as the float model.
    by_path = {w.path: w for w in float_model.weights}
    for weight in qat_model.weights:
        if weight.path in by_path:
            weight.assign(by_path[weight.path])
    x = np.random.default_rng(0).uniform(0, 255, (1, 33, 33, 3)).astype("float32")
    with simulation(False):
        np.testing.assert_array_equal(qat_model(x), float_model(x))


@pytest.mark.parametrize("fields, named", [
    (dict(head="ksac", atrous_rates=(6, 12)), "ksac (KSAC)"),
    (dict(upsampling="duc", decoder_output_stride=None), "logits.semantic (DUC)"),
])
def test_layers_without_an_int8_form_are_refused_by_name(fields, named):
    with pytest.raises(ValueError, match=r"no int8 form for .*" + re.escape(named)):
        build_deeplab(tiny_config(quantize_delay_step=0, **fields))


def test_quantize_delay_step_below_minus_one_is_refused():
    with pytest.raises(ValueError, match="quantize_delay_step: must be >= 0, or -1"):
        tiny_config(quantize_delay_step=-2).validate()


def _learned(config, seed=0):
    """A QAT model with He-scaled weights whose ranges were learned on two batches."""
    model = he_scale_weights(build_deeplab(config), seed)
    rng = np.random.default_rng(seed)
    for _ in range(2):
        model(rng.uniform(0, 255, (2, *config.crop_size, 3)).astype("float32"), training=True)
    return model


@pytest.mark.parametrize("fields", [
    dict(),  # MobileNetV2 + decoder, unit-range input
    pytest.param(dict(model_variant="resnet_v1_50", decoder_output_stride=None,
                      atrous_rates=(6, 12, 18), output_stride=16, multi_grid=(1, 2, 4)),
                 marks=pytest.mark.slow),  # imagenet-mean input, residual ReLUs
    pytest.param(dict(model_variant="xception_41", atrous_rates=(6, 12, 18)),
                 marks=pytest.mark.slow),  # ReLU before separables
])
def test_int8_tflite_computes_what_the_simulation_predicts(fields):
    """Every tensor of the file is int8 (uint8 pixels in), the ops are builtins without
    space-to-batch, and the first unit (exact inputs) matches the simulation to within one
    level (TFLite requantizes in fixed point; a tie may round the other way). The next
    units inherit those one-level differences, so only their mean is pinned; deeper in a
    random network they grow (the trained-model check is in test_quickstart)."""
    from ai_edge_litert.interpreter import Interpreter

    from deeplab.export.tflite import convert_to_tflite

    config = tiny_config(quantize_delay_step=0, **fields)
    model = _learned(config)
    flatbuffer = convert_to_tflite(model, config.crop_size, "int8")  # no calibration data
    interpreter = Interpreter(model_content=flatbuffer, experimental_preserve_all_tensors=True)
    ops = {op["op_name"] for op in interpreter._get_ops_details()}
    assert not ops & {"DEQUANTIZE", "SPACE_TO_BATCH_ND", "BATCH_TO_SPACE_ND"}, ops
    floats = [t["name"] for t in interpreter.get_tensor_details() if t["dtype"] == np.float32]
    assert floats == [], floats
    interpreter.allocate_tensors()
    detail = interpreter.get_input_details()[0]
    assert detail["dtype"] == np.uint8 and detail["quantization"] == (1.0, 0)
    image = np.random.default_rng(10).integers(0, 256, (1, 33, 33, 3))
    interpreter.set_tensor(detail["index"], image.astype(np.uint8))
    interpreter.invoke()

    backbone = model.backbone
    units = [layer for layer in backbone.layers if hasattr(layer, "output_quantizer")][:3]
    probe = keras.Model(backbone.input, [unit.output for unit in units])
    expected = probe(model.get_layer("preprocess")(image.astype("float32")))
    for index, (unit, simulated) in enumerate(zip(units, expected)):
        tensor = [t for t in interpreter.get_tensor_details()
                  if f"/{unit.name}_1/" in t["name"] and t["dtype"] == np.int8
                  and tuple(t["shape"]) == tuple(simulated.shape)][-1]
        scale, zero_point = tensor["quantization"]
        got = (interpreter.get_tensor(tensor["index"]).astype(np.float32) - zero_point) * scale
        error = np.abs(got - np.asarray(simulated)) / scale
        print(f"{unit.name}: max {error.max():.2f}, mean {error.mean():.3f} levels")
        assert error.mean() <= 0.1
        if index == 0:
            assert error.max() <= 1.0 + 1e-3


def test_export_refuses_ranges_never_learned():
    from deeplab.export.tflite import convert_to_tflite

    model = build_deeplab(tiny_config(quantize_delay_step=100))
    with pytest.raises(ValueError, match=r"no learned quantization ranges .* before "
                                         r"--quantize_delay_step=100"):
        convert_to_tflite(model, (33, 33), "int8")


@pytest.mark.slow
def test_a_model_with_unlearned_ranges_still_converts_as_float():
    from deeplab.export.tflite import convert_to_tflite

    # The QAT model is a float model too.
    assert convert_to_tflite(build_deeplab(tiny_config(quantize_delay_step=100)), (33, 33),
                             "float")


# === Training ===
def train(data, logdir, delay, steps=5, **fields):
    model = tiny_config(num_classes=6, batch_norm_decay=0.9, quantize_delay_step=delay)
    config = TrainConfig(model, str(data), str(logdir), train_crop_size=(33, 33),
                         train_batch_size=4, training_number_of_steps=steps, optimizer="adam",
                         adam_learning_rate=1e-3, log_steps=1, save_interval_steps=3, seed=0,
                         **fields)
    lines = []
    trainer = Trainer(config, log=lines.append)
    trainer.train()
    losses = [line.split(" loss ")[1].split()[0] for line in lines if " loss " in line]
    return trainer, lines, losses


@pytest.fixture(scope="module")
def float_run(tiny_data, tmp_path_factory):
    logdir = tmp_path_factory.mktemp("float")
    return (logdir, *train(tiny_data, logdir, -1))


@pytest.fixture(scope="module")
def qat_run(tiny_data, tmp_path_factory):
    logdir = tmp_path_factory.mktemp("qat")
    return (logdir, *train(tiny_data, logdir, 3))


@pytest.mark.slow
def test_training_is_float_until_the_delay_step_then_learns_ranges(float_run, qat_run):
    _, _, _, float_losses = float_run
    logdir, trainer, lines, losses = qat_run
    # Steps 1-3 are today's float training, to the last printed digit; step 4 is not.
    assert losses[:3] == float_losses[:3] and losses[3] != float_losses[3]
    assert "step 4: quantization-aware training from here on (--quantize_delay_step=3)" in (
        "\n".join(lines))
    observed = {q.path: q.observed.numpy() for q in quantization.quantizers(trainer.model)}
    assert observed and set(observed.values()) == {2.0}  # steps 4 and 5
    # The checkpoint written at step 3 has no ranges yet; the one at step 5 has them.
    from deeplab.runs.store import load_model

    early = load_model(str(logdir / "ckpt-3"))
    assert len(quantization.unlearned_quantizers(early)) == len(observed)
    last = load_model(str(logdir))
    for kept, trained in zip(quantization.quantizers(last),
                             quantization.quantizers(trainer.model)):
        assert kept.path == trained.path
        assert kept.minimum.numpy() == trained.minimum.numpy()
        assert kept.maximum.numpy() == trained.maximum.numpy()


@pytest.mark.slow
def test_resume_keeps_the_ranges_and_a_float_checkpoint_starts_qat(tiny_data, float_run,
                                                                    tmp_path):
    initial = str(float_run[0] / "ckpt-3")
    # The original's recipe: fine-tune a float checkpoint with --quantize_delay_step=0.
    trainer, lines, _ = train(tiny_data, tmp_path, 0, steps=2, tf_initial_checkpoint=initial)
    ranges = [(q.minimum.numpy(), q.maximum.numpy(), q.observed.numpy())
              for q in quantization.quantizers(trainer.model)]
    assert {r[2] for r in ranges} == {2.0}
    from deeplab.runs.store import load_model

    saved = [(q.minimum.numpy(), q.maximum.numpy(), q.observed.numpy())
             for q in quantization.quantizers(load_model(str(tmp_path / "ckpt-2")))]
    assert saved == ranges
    resumed, lines, _ = train(tiny_data, tmp_path, 0, steps=3, tf_initial_checkpoint=initial)
    assert lines[0].startswith(f"resumed from {tmp_path / 'ckpt-2'} at step 2")
    # The count goes on from the checkpoint's (a fresh range would be at 1 batch).
    assert {q.observed.numpy() for q in quantization.quantizers(resumed.model)} == {3.0}


@pytest.mark.slow
def test_eval_binary_runs_the_simulation_and_says_so(tiny_data, qat_run, tmp_path):
    import json
    import os
    import subprocess
    import sys

    logdir, trainer, _, _ = qat_run
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
    result = subprocess.run(
        [sys.executable, "-m", "deeplab.cli.eval", f"--checkpoint_dir={logdir}",
         f"--dataset_dir={tiny_data}", f"--eval_logdir={tmp_path / 'eval'}",
         "--eval_crop_size=33,33", "--max_number_of_evaluations=1"],
        capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    count = len(quantization.quantizers(trainer.model))
    assert (f"quantization-aware model: running its int8 simulation ({count} learned "
            "activation ranges)") in result.stdout
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert metrics["quantization_aware"] is True
    # The same images through the trained model's simulation give the same confusion.
    from deeplab.data.pipeline import PreprocessConfig, make_dataset
    from deeplab.evaluation.metrics import confusion_matrix, segmentation_metrics

    matrix = np.zeros((6, 6), np.int64)
    for batch in make_dataset(str(tiny_data), "val", 1, False,
                              PreprocessConfig(crop_size=(33, 33))):
        labels = np.argmax(trainer.model(batch["image"], training=False), -1)[0]
        matrix += confusion_matrix(np.asarray(batch["label"])[0, ..., 0], labels, 6)
    assert metrics["miou"] == pytest.approx(segmentation_metrics(matrix)["miou"], abs=1e-6)


REPLICAS_SCRIPT = """
import sys
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import numpy as np
from deeplab import quantization
from deeplab.config import ModelConfig
from deeplab.training.train_config import TrainConfig
from deeplab.training.trainer import Trainer
model = ModelConfig(num_classes=6, depth_multiplier=0.35, crop_size=(33, 33),
                    mobilenet_final_layer=4, head="none", quantize_delay_step=1)
config = TrainConfig(model, sys.argv[1], sys.argv[2], train_crop_size=(33, 33),
                     train_batch_size=4, training_number_of_steps=2)
trainer = Trainer(config, tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]))
trainer.ignore_label = 255
rng = np.random.default_rng(0)
batch = {"image": rng.uniform(0, 255, (4, 33, 33, 3)).astype("float32"),
         "label": rng.integers(0, 6, (4, 33, 33, 1)).astype("int32")}
batches = iter(trainer.strategy.experimental_distribute_dataset(
    tf.data.Dataset.from_tensors(batch).repeat()))
for _ in range(2):
    trainer.train_step(next(batches))
    print(sorted({float(q.observed.numpy()) for q in quantization.quantizers(trainer.model)}))
"""


@pytest.mark.slow
def test_two_replicas_train_float_before_the_delay(tiny_data, tmp_path):
    """MirroredStrategy traces each replica in its own thread; the float step must be float
    there too (a context set around strategy.run did not reach those threads)."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
    result = subprocess.run([sys.executable, "-c", REPLICAS_SCRIPT, str(tiny_data),
                             str(tmp_path)], capture_output=True, text=True, env=env,
                            timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split("\n")[-3:-1] == ["[0.0]", "[1.0]"]


def test_mixed_precision_simulates_in_float32_and_trains():
    """Under mixed_float16 the folding and FakeQuant run in float32 (FakeQuant has no
    float16 kernel); the ranges are float32 variables, never autocast."""
    keras.mixed_precision.set_global_policy("mixed_float16")
    model = build_deeplab(tiny_config(quantize_delay_step=0))
    x = np.random.default_rng(0).uniform(0, 255, (2, 33, 33, 3)).astype("float32")
    with tf.GradientTape() as tape:
        logits = model(x, training=True)
        loss = tf.reduce_mean(tf.square(logits))
    grads = tape.gradient(loss, model.trainable_variables)
    assert logits.dtype == tf.float32 and np.isfinite(float(loss))
    assert all(g is not None and np.isfinite(np.asarray(g, np.float32)).all() for g in grads)
    trackers = quantization.quantizers(model)
    assert {q.minimum.dtype for q in trackers} == {"float32"}
    assert {float(q.observed.numpy()) for q in trackers} == {1.0}
