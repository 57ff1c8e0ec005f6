"""Training pieces against hand-computed values, and the trainer on a tiny synthetic set."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from deeplab.config import ModelConfig
from deeplab.evaluation.metrics import confusion_matrix, segmentation_metrics
from deeplab.model import build_deeplab
from deeplab.runs.store import save_model
from deeplab.training.initialization import initialize_from_checkpoint
from deeplab.training.losses import (
    hard_mining_fraction,
    label_weight_mask,
    softmax_cross_entropy,
)
from deeplab.training.multipliers import gradient_multipliers
from deeplab.training.optimizers import (
    MomentumOptimizer,
    keras_sgd_to_accumulators,
    make_optimizer,
    saved_optimizer,
)
from deeplab.training.schedules import DeepLabLearningRate
from deeplab.training.train_config import TrainConfig


# === Loss ===
def test_label_weight_mask_values_of_the_original_tests():
    labels = tf.constant([0, 4, 1, 3, 2])
    np.testing.assert_allclose(label_weight_mask(labels, 4, 5, 0.5), [0.5, 0, 0.5, 0.5, 0.5])
    np.testing.assert_allclose(label_weight_mask(labels, 4, 5, [0, .1, .2, .3, .4]),
                               [0, 0, 0.1, 0.3, 0.2])
    with pytest.raises(ValueError, match="The type of label_weights is invalid"):
        label_weight_mask(labels, 4, 5, None)
    with pytest.raises(ValueError, match="Length of label_weights must be equal to num_classes"):
        label_weight_mask(labels, 4, 5, [1.0, 2.0, 3.0])


def numpy_cross_entropy(logits, labels):
    shifted = logits - logits.max(-1, keepdims=True)
    log_probabilities = shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))
    return -np.take_along_axis(log_probabilities, labels[..., None], -1)[..., 0]


def test_cross_entropy_ignores_void_and_normalises_by_counted_pixels():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(2, 3, 3, 4)).astype("float32")
    labels = rng.integers(0, 4, (2, 3, 3)).astype("int32")
    labels[0, 0, 0] = labels[1, 2, 1] = 255
    keep = labels != 255
    pixel = numpy_cross_entropy(logits, np.where(keep, labels, 0))
    want = pixel[keep].sum() / keep.sum()
    got = softmax_cross_entropy(logits, labels, 4, 255)
    assert float(got) == pytest.approx(want, rel=1e-5)
    weights = [1.0, 2.0, 0.5, 3.0]
    w = np.asarray(weights)[np.where(keep, labels, 0)] * keep
    got_weighted = softmax_cross_entropy(logits, labels, 4, 255, label_weights=weights)
    assert float(got_weighted) == pytest.approx((pixel * w).sum() / (w > 0).sum(), rel=1e-5)


def test_top_k_hard_pixel_mining_and_ramp():
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(1, 4, 5, 3)).astype("float32")
    labels = rng.integers(0, 3, (1, 4, 5)).astype("int32")
    pixel = numpy_cross_entropy(logits, labels).ravel()
    top = np.sort(pixel)[::-1][: int(0.25 * 20)]
    got = softmax_cross_entropy(logits, labels, 3, top_k_percent_pixels=0.25)
    assert float(got) == pytest.approx(top.mean(), rel=1e-5)
    # Ramp: step 50 of 100 → halfway between all pixels and 25 %: 62.5 %.
    assert float(hard_mining_fraction(50, 0.25, 100)) == pytest.approx(0.625)
    assert float(hard_mining_fraction(500, 0.25, 100)) == pytest.approx(0.25)
    ramped = softmax_cross_entropy(logits, labels, 3, top_k_percent_pixels=0.25,
                                   hard_example_mining_step=100, step=50)
    assert float(ramped) == pytest.approx(np.sort(pixel)[::-1][:12].mean(), rel=1e-5)


def test_upsample_logits_or_downsample_labels():
    logits = tf.zeros((1, 2, 2, 3))
    labels = tf.constant(np.array([[0, 0, 1], [0, 2, 1], [255, 2, 2]]).reshape(1, 3, 3))
    # Uniform logits: log(3) per counted pixel either way.
    assert float(softmax_cross_entropy(logits, labels, 3)) == pytest.approx(math.log(3))
    assert float(softmax_cross_entropy(logits, labels, 3, upsample_logits=False)) == \
        pytest.approx(math.log(3))


# === Learning rate and multipliers ===
def test_learning_rate_policies():
    poly = DeepLabLearningRate("poly", 0.007, 30000)
    assert float(poly(0)) == pytest.approx(0.007)
    assert float(poly(15000)) == pytest.approx(0.007 * 0.5 ** 0.9)
    assert float(poly(30000)) == pytest.approx(0.0)
    assert float(poly(40000)) == pytest.approx(0.0)
    slow = DeepLabLearningRate("poly", 0.01, 1100, slow_start_step=100,
                               slow_start_learning_rate=1e-4)
    assert float(slow(50)) == pytest.approx(1e-4)
    assert float(slow(600)) == pytest.approx(0.01 * 0.5 ** 0.9)
    step = DeepLabLearningRate("step", 0.1, 10000, learning_rate_decay_step=2000,
                               learning_rate_decay_factor=0.1)
    assert [float(step(s)) for s in (0, 1999, 2000, 4500)] == pytest.approx(
        [0.1, 0.1, 0.01, 0.001])
    cosine = DeepLabLearningRate("cosine", 0.02, 1000)
    assert float(cosine(500)) == pytest.approx(0.01)
    with pytest.raises(ValueError, match="learning_policy"):
        DeepLabLearningRate("exp", 0.1, 10)


def test_gradient_multipliers():
    paths = ["Conv/conv/kernel", "logits.semantic/kernel", "logits.semantic/bias",
             "aspp/aspp0/conv/kernel", "duc_like/bias"]
    # The last layers of a DeepLabv3 with ASPP, as the model reports them.
    model = build_deeplab(model_variant="mobilenet_v2", depth_multiplier=0.35,
                          atrous_rates=(2, 4), num_classes=3)
    last = model.last_layer_prefixes()
    assert last == ("logits.semantic/", "aspp/")
    assert model.last_layer_prefixes(logits_only=True) == ("logits.semantic/",)
    assert gradient_multipliers(paths, last) == {"logits.semantic/bias": 2.0,
                                                 "duc_like/bias": 2.0}
    assert gradient_multipliers(paths, last, 10.0) == {
        "logits.semantic/kernel": 10.0, "logits.semantic/bias": 20.0,
        "aspp/aspp0/conv/kernel": 10.0, "duc_like/bias": 2.0}
    assert "aspp/aspp0/conv/kernel" not in gradient_multipliers(
        paths, model.last_layer_prefixes(logits_only=True), 10.0)


# === Optimizer ===
class Piecewise(keras.optimizers.schedules.LearningRateSchedule):
    """``rates[step]``: the rate of update ``step + 1``."""

    def __init__(self, rates):
        self.rates = rates

    def __call__(self, step):
        return tf.gather(tf.constant(self.rates), tf.cast(step, tf.int32))


def test_momentum_is_the_original_rule_over_a_rate_change_resumed_halfway(tmp_path):
    """TF1's rule by hand, m = 0.9, rates 0.1, 0.05, 0.02, gradients 1, 2, -1 from w = 1:
    accum 1, 2.9, 1.61 and w 0.9, 0.755, 0.7228. Keras SGD (v = m v - lr g; w += v) gives
    0.9, 0.71, 0.559. The checkpoint after step 2 resumes into a fresh optimizer."""
    rates = [0.1, 0.05, 0.02]
    gradients = [1.0, 2.0, -1.0]
    w = tf.Variable([1.0])
    optimizer = MomentumOptimizer(Piecewise(rates), momentum=0.9)
    for g in gradients[:2]:
        optimizer.apply([tf.constant([g])], [w])
    np.testing.assert_allclose(w.numpy(), [0.755], rtol=1e-6)
    np.testing.assert_allclose(optimizer.accumulators[0].numpy(), [2.9], rtol=1e-6)
    prefix = tf.train.Checkpoint(w=w, optimizer=optimizer).save(str(tmp_path / "ckpt"))
    w2 = tf.Variable([0.0])
    resumed = MomentumOptimizer(Piecewise(rates), momentum=0.9)
    resumed.build([w2])
    tf.train.Checkpoint(w=w2, optimizer=resumed).restore(prefix).assert_consumed()
    assert int(resumed.iterations.numpy()) == 2
    resumed.apply([tf.constant([gradients[2]])], [w2])
    np.testing.assert_allclose(w2.numpy(), [0.7228], rtol=1e-6)
    np.testing.assert_allclose(resumed.accumulators[0].numpy(), [1.61], rtol=1e-6)
    keras_w = tf.Variable([1.0])
    sgd = keras.optimizers.SGD(Piecewise(rates), momentum=0.9)
    for g in gradients:
        sgd.apply([tf.constant([g])], [keras_w])
    np.testing.assert_allclose(keras_w.numpy(), [0.559], rtol=1e-6)
    assert saved_optimizer(prefix) == "momentum"


def test_keras_sgd_velocity_converts_to_the_accumulator():
    """At a constant rate the two rules coincide; the converted slot continues Keras'
    trajectory exactly: v after steps g = 1, 2 at lr 0.1 is -0.1 * (0.9 + 2) = -0.29,
    the accumulator 2.9."""
    w = tf.Variable([1.0])
    sgd = keras.optimizers.SGD(0.1, momentum=0.9)
    for g in (1.0, 2.0):
        sgd.apply([tf.constant([g])], [w])
    optimizer = MomentumOptimizer(0.1, momentum=0.9)
    optimizer.build([w])
    optimizer.accumulators[0].assign(sgd.momentums[0])
    keras_sgd_to_accumulators(optimizer, 0.1)
    np.testing.assert_allclose(optimizer.accumulators[0].numpy(), [2.9], rtol=1e-6)
    # Keras' next step from w = 1 - 0.1 - 0.29 = 0.61: v = 0.9 * -0.29 + 0.1 = -0.161,
    # w = 0.449.
    np.testing.assert_allclose(w.numpy(), [0.61], rtol=1e-6)
    optimizer.apply([tf.constant([-1.0])], [w])
    np.testing.assert_allclose(w.numpy(), [0.449], rtol=1e-6)
    with pytest.raises(ValueError, match="learning rate 0"):
        keras_sgd_to_accumulators(optimizer, 0.0)


def test_adam_is_tf1_s_rule_with_the_flag_s_epsilon():
    """TF1's AdamOptimizer by hand (m, v, lr_t = lr sqrt(1 - b2^t) / (1 - b1^t), epsilon
    added to sqrt(v)), the original's --optimizer=adam, over two steps."""
    optimizer = make_optimizer("adam", 0.1, adam_epsilon=1e-3)
    w = tf.Variable([1.0])
    m = v = 0.0
    expected = 1.0
    for t, g in enumerate((1.0, 2.0), start=1):
        optimizer.apply([tf.constant([g])], [w])
        m, v = 0.9 * m + 0.1 * g, 0.999 * v + 0.001 * g * g
        rate = 0.1 * math.sqrt(1 - 0.999 ** t) / (1 - 0.9 ** t)
        expected -= rate * m / (math.sqrt(v) + 1e-3)
        # float32's 1 - 0.999 ** t carries ~1e-5 of relative error (in TF1's too).
        np.testing.assert_allclose(w.numpy(), [expected], rtol=1e-5)
    assert isinstance(make_optimizer("momentum", 0.1), MomentumOptimizer)
    with pytest.raises(ValueError, match="--optimizer must be momentum or adam"):
        make_optimizer("sgd", 0.1)


# === Metrics ===
def test_metrics_against_a_hand_built_confusion_matrix():
    labels = np.array([0, 0, 1, 1, 2, 255, 2, 0])
    predictions = np.array([0, 1, 1, 1, 0, 2, 2, 0])
    matrix = confusion_matrix(labels, predictions, 3)
    np.testing.assert_array_equal(matrix, [[2, 1, 0], [0, 2, 0], [1, 0, 1]])
    metrics = segmentation_metrics(matrix)
    iou = [2 / 4, 2 / 3, 1 / 2]
    assert metrics["per_class_iou"] == pytest.approx(iou)
    assert metrics["miou"] == pytest.approx(np.mean(iou))
    assert metrics["pixel_accuracy"] == pytest.approx(5 / 7)
    assert metrics["mean_accuracy"] == pytest.approx(np.mean([2 / 3, 1, 1 / 2]))
    assert metrics["frequency_weighted_iou"] == pytest.approx(
        3 / 7 * 2 / 4 + 2 / 7 * 2 / 3 + 2 / 7 * 1 / 2)
    absent = segmentation_metrics(confusion_matrix([0, 0], [0, 0], 3))
    assert absent["miou"] == 1.0 and np.isnan(absent["per_class_iou"][1])
    with pytest.raises(ValueError, match=r"label values \[7\] are outside \[0, 3\)"):
        confusion_matrix([7], [0], 3)


# === Initial checkpoints ===
def test_initial_checkpoint_with_other_num_classes(tmp_path):
    source = build_deeplab(num_classes=5, depth_multiplier=0.5)
    path = save_model(source, tmp_path / "src.weights.h5")
    target = build_deeplab(num_classes=3, depth_multiplier=0.5)
    with pytest.raises(ValueError, match="--initialize_last_layer=false "
                                         "--last_layers_contain_logits_only=true"):
        initialize_from_checkpoint(target, path)
    lines = initialize_from_checkpoint(target, path, False, True)
    assert "skipped 2 last-layer variables" in lines[1]
    np.testing.assert_array_equal(target.get_layer("aspp").aspp0.conv.kernel,
                                  source.get_layer("aspp").aspp0.conv.kernel)
    fresh = build_deeplab(num_classes=3, depth_multiplier=0.5)
    lines = initialize_from_checkpoint(fresh, path, False, False)
    assert "aspp" in lines[1] and "logits.semantic" in lines[1]


def test_train_config_errors_name_the_flag(tmp_path):
    model = ModelConfig(num_classes=3)
    with pytest.raises(ValueError, match="--train_crop_size"):
        TrainConfig(model, "d", "l", train_crop_size=(513,))
    with pytest.raises(ValueError, match="--label_weights: gives 2 weights for 3 classes"):
        TrainConfig(model, "d", "l", label_weights=(1.0, 2.0))
    with pytest.raises(ValueError, match="--optimizer"):
        TrainConfig(model, "d", "l", optimizer="sgd")
