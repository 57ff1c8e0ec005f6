"""TF1 checkpoints by the original's variable names, keras.applications MobileNetV2, storage."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from layer_test_utils import random_inputs

from deeplab.backbones import MobileNetV2
from deeplab.model import build_deeplab
from deeplab.runs.store import load_model, save_model
from deeplab.weights.checkpoint_import import import_tf1_checkpoint
from deeplab.weights.keras_applications import import_keras_mobilenet_v2, keras_layer_name

# MobileNetV2 at depth multiplier 0.5, divisible_by 1, written the way slim names it.
_BLOCKS = [(1, 8, 1), (6, 12, 2), (6, 12, 1), (6, 16, 2), (6, 16, 1), (6, 16, 1), (6, 32, 2),
           (6, 32, 1), (6, 32, 1), (6, 32, 1), (6, 48, 1), (6, 48, 1), (6, 48, 1), (6, 80, 2),
           (6, 80, 1), (6, 80, 1), (6, 160, 1)]


def original_variables(num_classes=3, seed=0):
    """Names and shapes of an original DeepLabv3+ MobileNetV2 (dm 0.5) checkpoint."""
    rng = np.random.default_rng(seed)
    variables = {}

    def conv(scope, shape, bn=True, gamma=True, depthwise=False):
        name = "depthwise_weights" if depthwise else "weights"
        variables[f"{scope}/{name}"] = rng.normal(0, 0.1, shape).astype("float32")
        channels = shape[2] if depthwise else shape[3]
        if bn:
            if gamma:
                variables[f"{scope}/BatchNorm/gamma"] = rng.uniform(0.5, 1.5, channels)
            variables[f"{scope}/BatchNorm/beta"] = rng.normal(0, 0.1, channels)
            variables[f"{scope}/BatchNorm/moving_mean"] = rng.normal(0, 0.1, channels)
            variables[f"{scope}/BatchNorm/moving_variance"] = rng.uniform(0.5, 2.0, channels)

    # slim's mobilenet batch_norm has scale=False: no gamma in the backbone.
    conv("MobilenetV2/Conv", (3, 3, 3, 16), gamma=False)
    channels = 16
    for i, (t, c, _) in enumerate(_BLOCKS):
        scope = "MobilenetV2/expanded_conv" + ("" if i == 0 else f"_{i}")
        inner = channels * t
        if t > 1:
            conv(f"{scope}/expand", (1, 1, channels, inner), gamma=False)
        conv(f"{scope}/depthwise", (3, 3, inner, 1), gamma=False, depthwise=True)
        conv(f"{scope}/project", (1, 1, inner, c), gamma=False)
        channels = c
    conv("image_pooling", (1, 1, 160, 256))
    conv("aspp0", (1, 1, 160, 256))
    conv("concat_projection", (1, 1, 512, 256))
    conv("decoder/feature_projection0", (1, 1, 72, 48))
    conv("decoder/decoder_conv0_depthwise", (3, 3, 304, 1), depthwise=True)
    conv("decoder/decoder_conv0_pointwise", (1, 1, 304, 256))
    conv("decoder/decoder_conv1_depthwise", (3, 3, 256, 1), depthwise=True)
    conv("decoder/decoder_conv1_pointwise", (1, 1, 256, 256))
    variables["logits/semantic/weights"] = rng.normal(0, 0.1, (1, 1, 256, num_classes))
    variables["logits/semantic/biases"] = rng.normal(0, 0.1, num_classes)
    variables["logits/semantic/weights/Momentum"] = np.zeros((1, 1, 256, num_classes))
    variables = {k: np.asarray(v, dtype="float32") for k, v in variables.items()}
    variables["global_step"] = np.int64(30000)
    return variables


def write_tf1_checkpoint(prefix, variables):
    """A name-based checkpoint, as TF1's Saver wrote the model-zoo files."""
    with tf.Graph().as_default():
        tf_vars = [tf.compat.v1.Variable(v, name=n) for n, v in variables.items()]
        saver = tf.compat.v1.train.Saver(tf_vars)
        with tf.compat.v1.Session() as session:
            session.run(tf.compat.v1.global_variables_initializer())
            return saver.save(session, str(prefix))


def small_model(num_classes=3):
    return build_deeplab(model_variant="mobilenet_v2", depth_multiplier=0.5, output_stride=16,
                         decoder_output_stride=(4,), num_classes=num_classes)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    variables = original_variables()
    prefix = write_tf1_checkpoint(tmp_path_factory.mktemp("ckpt") / "model.ckpt", variables)
    return prefix, variables


def test_tf1_checkpoint_lands_on_the_right_layers(checkpoint):
    prefix, values = checkpoint
    model = small_model()
    report = import_tf1_checkpoint(model, prefix, strict=True)
    assert report.complete and len(report.matched) == 1 + 2 + 16 * 3 + 3 + 5 + 1
    backbone = model.backbone
    np.testing.assert_array_equal(
        backbone.get_layer("expanded_conv_5.project").conv.kernel,
        values["MobilenetV2/expanded_conv_5/project/weights"])
    np.testing.assert_array_equal(
        backbone.get_layer("expanded_conv_9.depthwise").bn.moving_variance,
        values["MobilenetV2/expanded_conv_9/depthwise/BatchNorm/moving_variance"])
    np.testing.assert_array_equal(backbone.get_layer("Conv").bn.gamma, np.ones(16))
    decoder = model.get_layer("decoder")
    np.testing.assert_array_equal(decoder.convs[0].depthwise.conv.kernel,
                                  values["decoder/decoder_conv0_depthwise/depthwise_weights"])
    np.testing.assert_allclose(model.get_layer("aspp").projection.bn.gamma,
                               values["concat_projection/BatchNorm/gamma"])
    np.testing.assert_allclose(model.get_layer("logits.semantic").bias,
                               values["logits/semantic/biases"])
    assert any("optimizer" in note for note in report.notes)
    assert any(note.startswith("51 BatchNorms have no gamma") for note in report.notes)


def test_num_classes_change_needs_the_last_layers_excluded(checkpoint):
    prefix, values = checkpoint
    model = small_model(num_classes=5)
    with pytest.raises(ValueError, match="logits/semantic/weights: checkpoint shape"):
        import_tf1_checkpoint(model, prefix)
    before = np.asarray(model.get_layer("logits.semantic").kernel)
    report = import_tf1_checkpoint(model, prefix, exclude_scopes=("logits",))
    np.testing.assert_array_equal(model.get_layer("logits.semantic").kernel, before)
    assert "logits/semantic" not in report.matched
    fresh = small_model(5)
    # The model names the original's last-layer scopes (get_extra_layer_scopes) it holds.
    scopes = fresh.last_layer_original_scopes()
    assert scopes == ("logits", "image_pooling", "aspp", "concat_projection", "decoder")
    report = import_tf1_checkpoint(fresh, prefix, exclude_scopes=scopes)
    assert not any(s.startswith(("aspp", "decoder", "image_pooling")) for s in report.matched)


def test_missing_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="give the prefix"):
        import_tf1_checkpoint(small_model(), tmp_path / "nothing")


def test_keras_applications_mobilenet_v2_weights_give_the_same_features(tmp_path):
    reference = keras.applications.MobileNetV2(
        input_shape=(96, 96, 3), include_top=False, weights=None, alpha=1.0
    )
    rng = np.random.default_rng(0)
    for layer in reference.layers:  # non-trivial BN statistics
        if isinstance(layer, keras.layers.BatchNormalization):
            gamma, beta, mean, var = layer.get_weights()
            layer.set_weights([gamma * rng.uniform(0.5, 1.5, gamma.shape), beta + 0.1,
                               mean + 0.05, var * rng.uniform(0.5, 2, var.shape)])
    path = tmp_path / "mobilenet_v2.weights.h5"
    reference.save_weights(path)
    ours = MobileNetV2(output_stride=None)
    report = import_keras_mobilenet_v2(ours, path)
    assert len(report.matched) == 1 + 2 + 16 * 3 and not report.missing_in_model
    x = random_inputs((1, 96, 96, 3)).clip(-1, 1)
    want = keras.Model(reference.input, reference.get_layer("block_16_project_BN").output)(x)
    np.testing.assert_allclose(np.asarray(ours(x)["features"]), np.asarray(want), atol=1e-4)


def test_keras_layer_names():
    assert keras_layer_name("Conv") == "Conv1"
    assert keras_layer_name("expanded_conv.depthwise") == "expanded_conv_depthwise"
    assert keras_layer_name("expanded_conv_12.expand") == "block_12_expand"
    assert keras_layer_name("expanded_conv_12") is None


def test_save_and_load_model_round_trip(tmp_path):
    model = build_deeplab(num_classes=4, depth_multiplier=0.5, atrous_rates=(2,))
    x = random_inputs((1, 33, 33, 3), scale=50) + 128
    path = save_model(model, tmp_path / "exp" / "m.weights.h5")
    assert path.is_file() and (tmp_path / "exp" / "m.config.json").is_file()
    assert not list((tmp_path / "exp").glob(".tmp-*"))
    loaded = load_model(path)
    assert loaded.config == model.config
    np.testing.assert_allclose(np.asarray(loaded(x)), np.asarray(model(x)), atol=1e-5)
    (tmp_path / "exp" / "m.config.json").unlink()
    with pytest.raises(FileNotFoundError, match="side by side"):
        load_model(path)
    with pytest.raises(ValueError, match="end with .weights.h5"):
        save_model(model, tmp_path / "m.h5")


@pytest.mark.parametrize("variant, root", [("resnet_v1_50_beta", "conv1_1"),
                                           ("resnet_v1_50", "conv1")])
def test_resnet_scopes_are_the_original_s(variant, root):
    """The original's feature_extractor names the beta variants' scope without "_beta"
    (its name_scope table: resnet_v1_50_beta -> resnet_v1_50), so the model zoo's
    checkpoints read ``resnet_v1_50/conv1_1/weights`` (the oracle imports one in full)."""
    from deeplab.weights.scopes import scope_targets

    model = build_deeplab(model_variant=variant, output_stride=16, num_classes=3)
    scopes = scope_targets(model)
    assert f"resnet_v1_50/{root}" in scopes
    assert "resnet_v1_50/block1/unit_1/bottleneck_v1/shortcut" in scopes
    assert not [s for s in scopes if "_beta" in s]
