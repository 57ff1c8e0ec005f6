"""The DeepLab builder: parameter counts and MAdds of the papers, configs, saving, errors."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from layer_test_utils import random_inputs

from deeplab.analysis.flops import count_madds, count_ops, count_parameters
from deeplab.config import ModelConfig
from deeplab.model import DeepLab, build_deeplab


@pytest.mark.parametrize(
    "fields, expected",
    [
        (dict(), 2_113_557),  # MobileNetV2-DeepLabv3 head without atrous branches
        (dict(atrous_rates=(6, 12, 18), aspp_with_separable_conv=False), 4_523_541),
        (dict(head="ksac", atrous_rates=(6, 12, 18), aspp_with_separable_conv=False), 3_048_981),
    ],
)
def test_mobilenet_v2_deeplabv3_parameter_counts(fields, expected):
    assert count_parameters(build_deeplab(num_classes=21, output_stride=16, **fields)) == expected


# ASPP runs the image-pooling share of its 1x1 projection on the 1x1 pooled map (a
# per-image bias) instead of on its 33x33 resize: (33*33 - 1) * 256 * 256 fewer MAdds
# at 513 and OS 16 than the architecture's nominal count, which the papers report.
POOLED_PROJECTION_SAVING_513_OS16 = (33 * 33 - 1) * 256 * 256


def test_mobilenet_v2_deeplabv3_madds_at_513():
    madds = count_madds(build_deeplab(output_stride=16), (1, 513, 513, 3))
    nominal = madds + POOLED_PROJECTION_SAVING_513_OS16
    assert abs(nominal / 2.75e9 - 1) < 0.02  # paper: 2.75 B
    assert abs(nominal / 2.74e9 - 1) < 0.002  # analytic count (papers.md §7.3)


def test_xception65_deeplabv3plus_madds_and_params_at_513():
    model = build_deeplab(
        model_variant="xception_65", atrous_rates=(6, 12, 18), decoder_output_stride=(4,)
    )
    madds = count_madds(model, (1, 513, 513, 3)) + POOLED_PROJECTION_SAVING_513_OS16
    assert abs(madds / 54.17e9 - 1) < 0.02  # paper (decoder + separable conv): 54.17 B
    conv_weights = sum(int(np.prod(w.shape)) for w in model.trainable_weights if w.ndim == 4)
    assert abs(conv_weights / 40.85e6 - 1) < 0.001  # papers.md §4.3


def test_space_to_batch_counting_reproduces_paper_inflation():
    """A single rate-6 conv on a 33x33 map: TF1 computed 36x36 positions."""
    inputs = keras.Input((33, 33, 8))
    from deeplab.layers import AtrousConv2D

    model = keras.Model(inputs, AtrousConv2D(4, 3, dilation_rate=6, use_bias=False)(inputs))
    ops = count_ops(model, (1, 33, 33, 8))
    assert [o.madds for o in ops] == [33 * 33 * 9 * 8 * 4]
    assert count_madds(model, (1, 33, 33, 8), space_to_batch=True) == 36 * 36 * 9 * 8 * 4


def test_model_outputs_logits_at_input_size_for_any_size_and_uint8():
    model = build_deeplab(num_classes=5, decoder_output_stride=(4,))
    for h, w in [(33, 33), (50, 71), (17, 9)]:
        out = model(np.zeros((1, h, w, 3), "uint8"))
        assert out.shape == (1, h, w, 5) and out.dtype == "float32"
    head = model.head_logits_model()
    assert head(np.zeros((1, 65, 65, 3), "float32")).shape == (1, 17, 17, 5)


def test_bilinear_upsampling_matches_align_corners_resize_of_head_logits():
    from deeplab.ops import resize_bilinear

    model = build_deeplab(num_classes=3)
    x = random_inputs((1, 49, 49, 3), scale=50.0) + 127.5
    low = model.head_logits_model()(x)
    np.testing.assert_allclose(
        np.asarray(model(x)), np.asarray(resize_bilinear(low, [49, 49])), atol=1e-5
    )


def test_duc_upsampling_and_decoder_variants():
    duc = build_deeplab(num_classes=4, upsampling="duc", decoder_output_stride=(4,))
    assert duc(np.zeros((1, 65, 65, 3), "float32")).shape == (1, 65, 65, 4)
    assert duc.get_layer("logits.semantic").upsample_factor == 4
    multi = build_deeplab(num_classes=4, decoder_output_stride=(8, 4), upsampling="duc",
                          duc_variant="aspp")
    assert multi(np.zeros((1, 33, 33, 3), "float32")).shape == (1, 33, 33, 4)
    assert multi.get_layer("decoder").num_levels == 2


def test_image_pooling_sized_from_crop_size_like_the_original():
    model = build_deeplab(crop_size=(513, 513), image_pooling_crop_size=(257, 257))
    assert model.get_layer("aspp").pooling_size == (17, 17)
    assert build_deeplab(crop_size=(65, 65)).get_layer("aspp").pooling_size == (5, 5)
    assert build_deeplab().get_layer("aspp").pooling_size is None


def test_batch_norm_settings_per_component():
    model = build_deeplab(model_variant="mobilenet_v2", atrous_rates=(6,),
                          decoder_output_stride=(4,))
    backbone_bn = model.backbone.get_layer("Conv").bn
    head_bn = model.get_layer("aspp").aspp0.bn
    decoder_bn = model.get_layer("decoder").projections[0].bn
    assert (backbone_bn.momentum, backbone_bn.epsilon) == (0.997, 1e-3)
    assert (head_bn.momentum, head_bn.epsilon) == (0.9997, 1e-5)
    assert (decoder_bn.momentum, decoder_bn.epsilon) == (0.9997, 1e-5)
    frozen = build_deeplab(fine_tune_batch_norm=False, batch_norm_decay=0.9)
    bn = frozen.backbone.get_layer("Conv").bn
    assert bn.momentum == 0.9 and not bn.update_statistics and bn.trainable


def test_weight_decay_is_slim_equivalent_and_skips_depthwise():
    model = build_deeplab(weight_decay=4e-5)
    conv = model.backbone.get_layer("Conv").conv
    assert conv.kernel_regularizer.l2 == pytest.approx(2e-5)
    assert model.backbone.get_layer("expanded_conv_1.depthwise").conv.depthwise_regularizer is None
    assert len(model.losses) > 0


def test_atrous_rates_auto_uses_crop_size():
    assert ModelConfig(atrous_rates="auto", crop_size=(513, 513)).atrous_rates == (5, 10, 15)
    with pytest.raises(ValueError, match="needs crop_size"):
        ModelConfig(atrous_rates="auto")


@pytest.mark.parametrize(
    "fields, message",
    [
        (dict(output_stride=12), r"ModelConfig.output_stride: must be one of \(8, 16, 32, None\)"),
        (dict(model_variant="vgg16"), "ModelConfig.model_variant: unknown 'vgg16'"),
        (dict(head="ksac"), "ModelConfig.atrous_rates: head='ksac'"),
        (dict(head="none", atrous_rates=(6,)), "ModelConfig.atrous_rates: head='none'"),
        (dict(decoder_output_stride=(2,)), r"decoder end points at strides \(4, 8, 16\), not 2"),
        (dict(decoder_output_stride=(4, 8)), "must be distinct and descending"),
        (dict(output_stride=8, decoder_output_stride=(8,)), "must be smaller than output_stride"),
        (dict(multi_grid=(1, 2, 4)), "ModelConfig.multi_grid: mobilenet_v2 has no multi-grid"),
        (dict(upsampling="deconv"), "ModelConfig.upsampling: must be one of"),
        (dict(head="aspp2"), "ModelConfig.head: must be one of"),
        (dict(num_classes=0), "ModelConfig.num_classes"),
        (dict(crop_size=(513,)), "ModelConfig.crop_size: must be two positive ints"),
        (dict(hdc_unit_rates={"block4": (1, 2)}), "resnet_v1_\\* backbones only"),
    ],
)
def test_invalid_configs_name_the_field(fields, message):
    with pytest.raises(ValueError, match=message):
        ModelConfig(**fields)


def test_unknown_config_field_is_rejected():
    with pytest.raises(ValueError, match="unknown fields"):
        ModelConfig.from_dict({"num_classes": 3, "atrous_rate": [6]})


def test_model_config_round_trip_and_keras_save(tmp_path):
    model = build_deeplab(
        model_variant="mobilenet_v2", num_classes=3, head="ksac", atrous_rates=(2, 4),
        decoder_output_stride=(4,), crop_size=(65, 65),
    )
    x = random_inputs((2, 65, 65, 3), scale=60.0) + 127.5
    expected = np.asarray(model(x))
    clone = DeepLab.from_config(model.get_config())
    assert clone.config == model.config
    path = tmp_path / "deeplab.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded, DeepLab) and loaded.config == model.config
    np.testing.assert_allclose(np.asarray(loaded(x)), expected, atol=1e-5)


def test_model_runs_under_mixed_bfloat16():
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    model = build_deeplab(num_classes=3, atrous_rates=(2,), decoder_output_stride=(4,))
    out = model(np.full((1, 33, 33, 3), 100.0, "float32"))
    assert out.dtype == "float32"  # logits stay float32 for the loss
    assert model.get_layer("aspp").compute_dtype == "bfloat16"
    assert np.all(np.isfinite(np.asarray(out)))


def test_training_gradients_reach_every_trainable_weight():
    import tensorflow as tf

    model = build_deeplab(num_classes=3, head="ksac", atrous_rates=(1, 2),
                          decoder_output_stride=(4,))
    x = random_inputs((2, 33, 33, 3), scale=60.0) + 127.5
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(tf.square(model(x, training=True)))
    grads = tape.gradient(loss, model.trainable_weights)
    missing = [w.path for w, g in zip(model.trainable_weights, grads) if g is None]
    assert not missing


def test_a_head_registered_outside_the_library_gets_the_last_layer_rules(tmp_path):
    """A new head touches no library file: the multiplier and --initialize_last_layer see it."""
    from deeplab.heads import HEADS, HeadSpec, register_head
    from deeplab.runs.store import save_model
    from deeplab.training.initialization import initialize_from_checkpoint
    from deeplab.training.multipliers import gradient_multipliers

    class ToyHead(keras.layers.Layer):
        def __init__(self, filters, **kwargs):
            super().__init__(**kwargs)
            self.conv = keras.layers.Conv2D(filters, 1, name="conv")

        def call(self, inputs):
            return self.conv(inputs)

    register_head(HeadSpec("toy", lambda config, context: ToyHead(16, name=config.head),
                           atrous_rates="forbidden"))
    try:
        fields = dict(model_variant="mobilenet_v2", depth_multiplier=0.35, head="toy",
                      num_classes=3)
        source, target = build_deeplab(**fields), build_deeplab(**fields)
        assert target.last_layer_prefixes() == ("logits.semantic/", "toy/")
        paths = [v.path for v in target.trainable_variables]
        multipliers = gradient_multipliers(paths, target.last_layer_prefixes(), 10.0)
        assert multipliers["toy/conv/kernel"] == 10.0 and multipliers["toy/conv/bias"] == 20.0
        weights = save_model(source, tmp_path / "source.weights.h5")
        before = {v.path: v.numpy() for v in target.weights}
        lines = initialize_from_checkpoint(target, str(weights), initialize_last_layer=False)
        assert "skipped 4 last-layer variables (--initialize_last_layer=false): " \
               "['logits.semantic', 'toy']" in "\n".join(lines)
        sources = {v.path: v.numpy() for v in source.weights}
        for variable in target.weights:
            expected = before if variable.path.startswith(("toy/", "logits.semantic/")) \
                else sources
            np.testing.assert_array_equal(variable.numpy(), expected[variable.path],
                                          err_msg=variable.path)
    finally:
        HEADS.pop("toy")
    with pytest.raises(ValueError, match="ModelConfig.head: must be one of .*, got 'toy'"):
        build_deeplab(**fields)
