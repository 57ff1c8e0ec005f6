"""What the original's formerly unknown flags do here: the DeepLabv2-style head, the image
pyramid, low-resolution prediction, eval/vis crops and batches, the checkpoint loop, the
deployment flags, profiling, and the one-line answers for flags whose mechanism is gone."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from layer_test_utils import he_scale_weights, run_layer_test

from deeplab.config import ModelConfig
from deeplab.evaluation.evaluator import Evaluator
from deeplab.evaluation.watch import checkpoints_to_process
from deeplab.inference.probabilities import predict_probabilities
from deeplab.layers.multi_rate_logits import MultiRateLogits
from deeplab.layers.pyramid_merge import PyramidMerge
from deeplab.model import build_deeplab
from deeplab.ops import resize_bilinear, resize_nearest, scale_dimension
from deeplab.training.distribution import Deployment, plan_strategy
from deeplab.weights.checkpoint_export import export_tf1_checkpoint
from deeplab.weights.checkpoint_import import import_tf1_checkpoint

REPO = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
SMALL = dict(model_variant="mobilenet_v2", depth_multiplier=0.25, num_classes=4)


def image_batch(n=1, h=65, w=65, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, (n, h, w, 3)).astype("float32")


# === --aspp_with_batch_norm=false, --logits_kernel_size ===
def test_multi_rate_logits_are_the_sum_of_one_conv_per_rate(tmp_path):
    layer = MultiRateLogits(3, (1, 2, 4), kernel_size=3)
    x = image_batch(1, 9, 9)[..., :3] / 255.0
    out = np.asarray(layer(x))
    expected = 0
    for branch, rate in zip(layer.branches, (1, 2, 4)):
        expected = expected + tf.nn.conv2d(x, branch.kernel, 1, "SAME", dilations=rate) + \
            branch.bias
    np.testing.assert_allclose(out, expected, atol=1e-5)
    assert [b.name for b in layer.branches] == ["semantic", "semantic_1", "semantic_2"]
    run_layer_test(MultiRateLogits, dict(num_classes=3, atrous_rates=(1, 2), kernel_size=3),
                   (1, 9, 9, 5), (1, 9, 9, 3), tmp_path)


def test_deeplabv2_head_has_no_aspp_and_round_trips_the_original_names(tmp_path):
    fields = dict(SMALL, atrous_rates=(6, 12, 18, 24), aspp_with_batch_norm=False,
                  logits_kernel_size=3)
    model = he_scale_weights(build_deeplab(**fields), seed=1)
    assert not [w for w in model.weights if w.path.startswith("aspp/")]
    logits = [w.path for w in model.weights if w.path.startswith("logits")]
    assert len(logits) == 8 and all(w.shape[:2] == (3, 3) for w in model.weights
                                     if w.path.startswith("logits") and "kernel" in w.path)
    # The original's scopes logits/semantic, logits/semantic_1, ... in and out.
    prefix = export_tf1_checkpoint(model, tmp_path / "model.ckpt")
    names = {name for name, _ in tf.train.list_variables(prefix)}
    assert {"logits/semantic/weights", "logits/semantic_3/biases"} <= names
    fresh = build_deeplab(**fields)
    report = import_tf1_checkpoint(fresh, prefix, strict=True)
    assert "logits/semantic_3" in report.matched
    x = image_batch()
    np.testing.assert_allclose(fresh(x), model(x), atol=1e-5)


@pytest.mark.parametrize("fields, message", [
    (dict(logits_kernel_size=3), "must be 1 when aspp_with_batch_norm is True"),
    (dict(aspp_with_batch_norm=False, logits_kernel_size=3), "or there are no atrous_rates"),
    (dict(aspp_with_batch_norm=False, head="ksac", atrous_rates=(1, 2)), "head='ksac'"),
    (dict(image_pyramid=(0.5, 0.0)), "scales must be > 0"),
    (dict(nas_use_classification_head=True), "nas_pnasnet / nas_hnasnet"),
    (dict(dense_prediction_cell_json="dpc.json"), "dpc.json' does not exist"),
    (dict(image_se_uses_qsigmoid=True), "set aspp_with_squeeze_and_excitation too"),
])
def test_original_model_options_are_checked_as_the_original(fields, message):
    with pytest.raises(ValueError, match=message):
        ModelConfig(**fields)


# === --image_pyramid, --merge_method ===
@pytest.mark.parametrize("method, reduce", [("max", np.maximum), ("avg", None)])
def test_image_pyramid_merges_each_scales_logits_as_the_original(method, reduce):
    scales = (0.5, 1.0, 1.5)
    single = he_scale_weights(build_deeplab(**SMALL, atrous_rates=(1, 2)), seed=3)
    pyramid = build_deeplab(**SMALL, atrous_rates=(1, 2), image_pyramid=scales,
                            merge_method=method)
    assert [w.path for w in pyramid.weights] == [w.path for w in single.weights]
    pyramid.set_weights(single.get_weights())
    x = image_batch(1, 65, 65)
    merged, *per_scale = pyramid.training_logits_model()(x)
    # By hand: the network at each scale (bilinear, align corners), its logits resized to
    # the largest scale's logits size scale_dimension(65, 1.5 / 16) = 7, then merged.
    size = scale_dimension(65, 1.5 / 16)
    head = single.head_logits_model()
    expected = []
    for scale in scales:
        scaled = resize_bilinear(x, [scale_dimension(65, scale)] * 2) if scale != 1 else x
        expected.append(resize_bilinear(head(scaled), [size, size]))
    for got, want in zip(per_scale, expected):
        np.testing.assert_allclose(got, want, atol=1e-4)
    want = np.maximum.reduce(expected) if reduce else np.mean(expected, axis=0)
    np.testing.assert_allclose(merged, want, atol=1e-4)
    np.testing.assert_allclose(pyramid(x), resize_bilinear(merged, [65, 65]), atol=1e-4)


def test_image_pyramid_scales_the_crop_sized_image_pooling():
    # Crop-sized pooling: 65 / 16 → a 5x5 kernel at scale 1; at 0.5 the crop is 33 → 3x3,
    # so the pooled branch still averages the whole (smaller) map, as the original did.
    model = build_deeplab(**SMALL, crop_size=(65, 65), image_pyramid=(0.5, 1.0))
    outputs = model.training_logits_model()(image_batch())
    assert [tuple(o.shape) for o in outputs] == [(1, 5, 5, 4)] * 3


def test_image_pyramid_pooling_equals_the_scaled_crop_model():
    # At scale 0.5 the original rebuilt the model with crop scale_dimension(97, 0.5) = 49:
    # the same weights with that crop give the pyramid's 0.5 branch exactly.
    pyramid = he_scale_weights(build_deeplab(**SMALL, crop_size=(97, 97),
                                             image_pooling_crop_size=(65, 65),
                                             image_pyramid=(0.5, 1.0)), seed=8)
    half = build_deeplab(**SMALL, crop_size=(49, 49), image_pooling_crop_size=(33, 33))
    half.set_weights(pyramid.get_weights())
    x = image_batch(1, 97, 97, seed=9)
    _, at_half, _ = pyramid.training_logits_model()(x)
    expected = resize_bilinear(half.head_logits_model()(resize_bilinear(x, [49, 49])), [7, 7])
    np.testing.assert_allclose(at_half, expected, atol=1e-4)


def test_pyramid_is_chosen_where_inference_runs(tmp_path):
    from deeplab.runs.store import load_model, save_model

    trained = build_deeplab(**SMALL, image_pyramid=(0.5, 1.0))
    path = save_model(trained, tmp_path / "m.weights.h5")
    assert load_model(path).config.image_pyramid is None  # as the original's eval default
    assert load_model(path, image_pyramid=(0.75, 1.0)).config.image_pyramid == (0.75, 1.0)
    with pytest.raises(ValueError, match="leave --image_pyramid out"):
        predict_probabilities(trained, tf.constant(image_batch()), (0.5, 1.0))
    with pytest.raises(ValueError, match="must differ"):
        ModelConfig(image_pyramid=(1.0, 1.001))


def test_crop_sized_model_runs_at_exactly_the_crop():
    # A crop of 64 (not 16k + 1) runs at 64, as the original, so the crop-sized image pooling
    # (kernel scale_dimension(64, 1/16) = 4 on a 4x4 map) stays global.
    model = he_scale_weights(build_deeplab(**SMALL, crop_size=(64, 64)), seed=10)
    x = image_batch(1, 50, 60, seed=11)
    mean = np.asarray(model.config.backbone_spec.mean_pixel, "float32")
    canvas = np.broadcast_to(mean, (1, 64, 64, 3)).copy()
    canvas[:, :50, :60] = x
    expected = tf.nn.softmax(model(canvas))[:, :50, :60]
    np.testing.assert_allclose(predict_probabilities(model, tf.constant(x)), expected,
                               atol=1e-5)


def test_multi_scale_inference_is_the_original_s_on_its_padded_canvas():
    """--eval_scales with --add_flipped_images as the original's predict_labels_multi_scale
    on an image padded to the crop 65: at scale 0.5 the canvas is resized to
    scale_dimension(65, 0.5) = 33 and the network runs with the crop 33 (image pooling 3x3,
    the whole map; the same weights built with crop 33), its logits go to the scale-1
    logits grid 5 and then to 65; a flip flips the whole canvas (the padding moves left);
    the softmaxes of all passes are averaged. The oracle measured the same against the
    original's code (1.8e-6)."""
    model = he_scale_weights(build_deeplab(**SMALL, atrous_rates=(1, 2), crop_size=(65, 65)),
                             seed=12)
    half = build_deeplab(**SMALL, atrous_rates=(1, 2), crop_size=(33, 33))
    half.set_weights(model.get_weights())
    x = image_batch(1, 50, 60, seed=13)
    mean = np.asarray(model.config.backbone_spec.mean_pixel, "float32")
    canvas = np.broadcast_to(mean, (1, 65, 65, 3)).copy()
    canvas[:, :50, :60] = x
    passes = []
    for image in (canvas, canvas[:, :, ::-1]):
        small = half(resize_bilinear(image, [33, 33]))
        at_half = resize_bilinear(resize_bilinear(small, [5, 5]), [65, 65])
        for logits in (model(image), at_half):
            passes.append(tf.nn.softmax(logits if image is canvas else logits[:, :, ::-1]))
    expected = np.mean(passes, axis=0)[:, :50, :60]
    got = predict_probabilities(model, tf.constant(x), (0.5, 1.0), add_flipped_images=True)
    np.testing.assert_allclose(got, expected, atol=1e-5)
    # The scale-0.5 network is not the crop-65 model at a smaller input (its pooling would
    # cover 4x4 of the 3x3 map and fail, or on a padded canvas average the padding).
    assert model.scaled_input_model(0.5) is not model
    assert model.scaled_input_model(1.0) is model


def test_pyramid_merge_layer(tmp_path):
    a, b = np.ones((1, 2, 2, 3), "float32"), np.zeros((1, 2, 2, 3), "float32")
    assert float(PyramidMerge("max")([a, b])[0, 0, 0, 0]) == 1.0
    assert float(PyramidMerge("avg")([a, b])[0, 0, 0, 0]) == 0.5
    with pytest.raises(ValueError, match="must be one of"):
        PyramidMerge("sum")


# === --prediction_with_upsampled_logits=false ===
def test_low_resolution_prediction_is_argmax_then_nearest_upsampling():
    upsampled = he_scale_weights(build_deeplab(**SMALL, atrous_rates=(1, 2)), seed=4)
    low = build_deeplab(**SMALL, atrous_rates=(1, 2), prediction_with_upsampled_logits=False)
    low.set_weights(upsampled.get_weights())
    x = image_batch(1, 65, 65, seed=5)
    labels = np.argmax(predict_probabilities(low, tf.constant(x)), -1)
    head = np.argmax(low.head_logits_model()(x), -1)[..., None]
    expected = np.asarray(resize_nearest(head, [65, 65]))[..., 0]
    np.testing.assert_array_equal(labels, expected)
    # The upsampled form differs on some pixels (blocky vs smooth boundaries).
    smooth = np.argmax(predict_probabilities(upsampled, tf.constant(x)), -1)
    assert 0 < np.mean(smooth != labels) < 0.5
    # Multi-scale inference upsamples, as the original's predict_labels_multi_scale.
    both = predict_probabilities(low, tf.constant(x), (1.0,), add_flipped_images=True)
    np.testing.assert_allclose(both, predict_probabilities(upsampled, tf.constant(x), (1.0,),
                                                           add_flipped_images=True), atol=1e-5)


@pytest.mark.slow
def test_low_resolution_prediction_in_tflite_matches_and_uses_builtins():
    from ai_edge_litert.interpreter import Interpreter

    from deeplab.export.tflite import convert_to_tflite, op_names

    model = he_scale_weights(build_deeplab(**SMALL, atrous_rates=(1, 2),
                                           prediction_with_upsampled_logits=False), seed=4)
    flatbuffer = convert_to_tflite(model, (65, 65), "float", "argmax")
    assert "RESIZE_NEAREST_NEIGHBOR" in op_names(flatbuffer)
    assert "RESIZE_BILINEAR" not in op_names(flatbuffer)
    interpreter = Interpreter(model_content=flatbuffer)
    interpreter.allocate_tensors()
    x = image_batch(1, 65, 65, seed=5)
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
    interpreter.invoke()
    labels = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    expected = np.argmax(predict_probabilities(model, tf.constant(x)), -1)
    np.testing.assert_array_equal(labels, expected)


# === --eval_crop_size / --vis_crop_size, --eval_batch_size ===
class _Batches:
    """Eval batches as the pipeline makes them: images padded to the batch's largest."""

    def __init__(self, images, labels):
        self.images, self.labels = images, labels

    def __iter__(self):
        height = max(i.shape[0] for i in self.images)
        width = max(i.shape[1] for i in self.images)
        padded = np.zeros((len(self.images), height, width, 3), "float32")
        labels = np.full((len(self.images), height, width, 1), 255, "int32")
        for k, (image, label) in enumerate(zip(self.images, self.labels)):
            padded[k, :image.shape[0], :image.shape[1]] = image
            labels[k, :label.shape[0], :label.shape[1], 0] = label
        yield {"image": tf.constant(padded), "label": tf.constant(labels),
               "valid_height": tf.constant([i.shape[0] for i in self.images]),
               "valid_width": tf.constant([i.shape[1] for i in self.images]),
               "image_name": tf.constant([f"im{k}" for k in range(len(self.images))])}


def test_eval_crop_pads_to_the_crop_as_the_original_and_batches_agree():
    crop = (81, 97)
    model = he_scale_weights(build_deeplab(**SMALL, atrous_rates=(1, 2), crop_size=crop),
                             seed=6)
    rng = np.random.default_rng(7)
    images = [rng.uniform(0, 255, (h, w, 3)).astype("float32") for h, w in ((50, 70), (81, 60),
                                                                             (33, 97))]
    labels = [rng.integers(0, 4, i.shape[:2]) for i in images]
    one_by_one = Evaluator(model, crop_size=crop).run(
        [next(iter(_Batches([i], [lab]))) for i, lab in zip(images, labels)], 255)
    batched = Evaluator(model, crop_size=crop).run(_Batches(images, labels), 255)
    np.testing.assert_array_equal(one_by_one, batched)
    # By hand: pad with the mean pixel to the crop, run the model (image pooling sized from
    # the crop), keep the image's window.
    mean = np.asarray(model.config.backbone_spec.mean_pixel, "float32")
    matrix = np.zeros((4, 4), np.int64)
    for image, label in zip(images, labels):
        canvas = np.broadcast_to(mean, (*crop, 3)).copy()
        canvas[:image.shape[0], :image.shape[1]] = image
        prediction = np.argmax(model(canvas[None])[0], -1)[:image.shape[0], :image.shape[1]]
        np.add.at(matrix, (label.ravel(), prediction.ravel()), 1)
    np.testing.assert_array_equal(batched, matrix)


def test_eval_crop_smaller_than_an_image_says_what_the_original_required():
    model = build_deeplab(**SMALL)
    image = np.zeros((70, 40, 3), "float32")
    with pytest.raises(ValueError, match=r"im0 is 70x40, larger than the crop 65,65.*"
                                         r"leave it out to evaluate whole images"):
        Evaluator(model, crop_size=(65, 65)).run(
            _Batches([image], [np.zeros((70, 40), int)]), 255)


# === --max_number_of_evaluations / --max_number_of_iterations ===
def test_checkpoint_loop_takes_the_latest_then_new_ones(tmp_path):
    checkpoint = tf.train.Checkpoint(v=tf.Variable(1.0))
    manager = tf.train.CheckpointManager(checkpoint, tmp_path, 3, checkpoint_name="ckpt")
    manager.save(1)
    manager.save(2)
    lines = []
    # Not given: the path once. 1: the latest. 0 (no limit): every new one until the timeout.
    assert list(checkpoints_to_process(str(tmp_path), None, 0, 1, "x", lines.append)) == [
        str(tmp_path)]
    assert list(checkpoints_to_process(str(tmp_path), 1, 0, 1, "x", lines.append)) == [
        str(tmp_path / "ckpt-2")]
    assert list(checkpoints_to_process(str(tmp_path), 0, 0, 1, "x", lines.append)) == [
        str(tmp_path / "ckpt-2")]
    assert lines[-1] == "no new checkpoint for 1s; stopping."
    with pytest.raises(ValueError, match="--max_number_of_evaluations=2 watches a training "
                                         "directory"):
        list(checkpoints_to_process(str(tmp_path / "ckpt-2"), 2, 0, 1,
                                    "max_number_of_evaluations"))


# === The deployment flags of train.py ===
def plan(strategy="mirrored", strategy_given=False, gpus=0, tf_config=None, **flags):
    deployment = Deployment(**flags, given=frozenset(flags))
    return plan_strategy(deployment, strategy, strategy_given, gpus, tf_config)


def test_num_clones_picks_mirrored_over_the_gpus_or_refuses():
    result = plan(gpus=4, num_clones=4)
    assert result.strategy == "mirrored" and result.devices == tuple(f"/gpu:{i}" for i in range(4))
    assert result.messages == ("4 GPU(s): using MirroredStrategy over GPUs 0-3 of the 4 "
                               "visible.",)
    with pytest.raises(ValueError, match="--num_clones=4 asks for 4 GPUs but 1 are visible"):
        plan(gpus=1, num_clones=4)
    with pytest.raises(ValueError, match="--strategy=one_device contradicts"):
        plan(strategy="one_device", strategy_given=True, gpus=2, num_clones=2)
    cpu = plan(num_clones=3, clone_on_cpu=True)
    assert cpu.cpu_clones == 3 and cpu.devices == ("/cpu:0", "/cpu:1", "/cpu:2")


def test_cluster_flags_say_what_replaces_them_or_refuse():
    cluster = {"cluster": {"worker": ["a:1", "b:1"]}, "task": {"type": "worker", "index": 1}}
    result = plan(tf_config=cluster, num_replicas=2, task=1, num_ps_tasks=2,
                  startup_delay_steps=15)
    assert result.strategy == "multi_worker"
    assert [m.split(":")[0] for m in result.messages] == [
        "--num_ps_tasks=2", "--startup_delay_steps", "--task=1", "2 replicas"]
    with pytest.raises(ValueError, match="reads the cluster from TF_CONFIG"):
        plan(num_replicas=2)
    with pytest.raises(ValueError, match="TF_CONFIG's cluster has 2 workers"):
        plan(tf_config=cluster, num_replicas=3)
    with pytest.raises(ValueError, match="--task=0 contradicts TF_CONFIG's task index 1"):
        plan(tf_config=cluster, task=0)
    assert plan().messages == () and plan().strategy == "mirrored"
    assert plan(tf_config=cluster, num_replicas=2, num_clones=4).messages[0].startswith(
        "--num_clones=4: each worker trains on its visible GPUs")
    with pytest.raises(ValueError, match="--clone_on_cpu with --num_replicas > 1"):
        plan(tf_config=cluster, num_replicas=2, clone_on_cpu=True)


def test_profile_window_says_when_nothing_was_profiled():
    from deeplab.training.trainer import ProfileWindow

    lines = []
    window = ProfileWindow("unused", first_step=1, log=lines.append)
    window.before_step(0)
    window.after_step(1)  # a one-step run: profiling would start at step 2
    window.stop()
    assert lines == ["--profile_logdir: nothing profiled (profiling starts at step 2, after "
                     "the traced first step; this run ended before it)"]


def run_train(*args):
    return subprocess.run(
        [sys.executable, "-m", "deeplab.cli.train", "--depth_multiplier=0.25",
         "--train_crop_size=33,33", "--train_batch_size=4", "--training_number_of_steps=7",
         "--log_steps=7", *args], capture_output=True, text=True, env=ENV, cwd=REPO,
        timeout=600)


@pytest.mark.slow
def test_train_with_cpu_clones_pyramid_and_a_profile(tiny_data, tmp_path):
    result = run_train(f"--dataset_dir={tiny_data}", f"--train_logdir={tmp_path / 'train'}",
                       "--num_clones=2", "--clone_on_cpu", "--image_pyramid=0.75",
                       "--image_pyramid=1.0", "--merge_method=avg",
                       f"--profile_logdir={tmp_path / 'profile'}", "--num_ps_tasks=1",
                       "--keep_aspect_ratio=false")
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    assert "2 clone(s) on the CPU: using MirroredStrategy over 2 logical CPU device(s)." in out
    assert "with 2 replica(s)" in out
    assert "--num_ps_tasks=1: parameter servers are replaced" in out
    assert "--keep_aspect_ratio: no effect, as in the original" in out
    assert f"profiled steps 2-6 to {tmp_path / 'profile'}" in out
    assert list((tmp_path / "profile" / "plugins" / "profile").glob("*/*.xplane.pb"))
    assert '"image_pyramid": [\n      0.75,\n      1.0\n    ]' in (
        tmp_path / "train" / "config.json").read_text()


@pytest.mark.parametrize("args, message", [
    (["--quantize_delay_step=-2"], "quantize_delay_step: must be >= 0, or -1 for float, got -2"),
    pytest.param(["--drop_path_keep_prob=0.9"], "--drop_path_keep_prob: drops paths of the "
                 "nas_pnasnet / nas_hnasnet cells; mobilenet_v2 has none: leave it at 1.0",
                 marks=pytest.mark.slow),
    (["--num_clones=2"], "--num_clones=2 asks for 2 GPUs but 0 are visible"),
    pytest.param(["--task=3"], "--task=3 names a worker of a cluster", marks=pytest.mark.slow),
    pytest.param(["--image_se_uses_qsigmoid"], "image_se_uses_qsigmoid: applies to the "
                 "squeeze-and-excitation gate", marks=pytest.mark.slow),
])
def test_train_refuses_in_one_line(tiny_data, tmp_path, args, message):
    result = run_train(f"--dataset_dir={tiny_data}", f"--train_logdir={tmp_path}", *args)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith("deeplab-train: ")
    assert message in result.stderr


def test_eval_takes_the_original_flags(tiny_data, tiny_run, tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "deeplab.cli.eval", f"--checkpoint_dir={tiny_run}/model.ckpt-2",
         f"--dataset_dir={tiny_data}", f"--eval_logdir={tmp_path}", "--eval_crop_size=33",
         "--eval_crop_size=33", "--eval_batch_size=2", "--max_number_of_evaluations=1",
         "--master=grpc://localhost:1", "--label_weights=1,2,1,1,1,1", "--logtostderr"],
        capture_output=True, text=True, env=ENV, cwd=REPO, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    assert "--master=grpc://localhost:1: the TF1 session target is gone" in out
    assert "--label_weights: weights the training loss only; deeplab-eval" in out
    assert "ckpt-2" in out and "mIoU" in out
    import json

    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["eval_crop_size"] == [33, 33] and metrics["step"] == 2


def test_vis_resizes_back_to_the_stored_size(tiny_data, tiny_run, tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "deeplab.cli.vis", f"--checkpoint_dir={tiny_run}",
         f"--dataset_dir={tiny_data}", f"--vis_logdir={tmp_path}", "--min_resize_value=49",
         "--max_resize_value=49", "--vis_batch_size=2", "--also_save_raw_predictions",
         "--max_number_of_iterations=1"],
        capture_output=True, text=True, env=ENV, cwd=REPO, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    import cv2

    raws = sorted((tmp_path / "raw_segmentation_results").glob("*.png"))
    assert len(raws) == 4  # every val image of tiny_data
    assert all(cv2.imread(str(p), cv2.IMREAD_UNCHANGED).shape == (32, 32) for p in raws)
    picture = cv2.imread(str(tmp_path / "segmentation_results" / "000000_overlay.png"))
    assert picture.shape[0] >= 32


def test_keras_layer_registry_knows_the_new_layers():
    for name in ("MultiRateLogits", "PyramidMerge"):
        assert keras.saving.get_registered_object(f"deeplab>{name}") is not None
