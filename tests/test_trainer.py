"""The trainer and the train/eval/vis binaries on a tiny synthetic data set."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from shared_runs import copy_run, tiny_config

from deeplab.config import ModelConfig
from deeplab.training.train_config import TrainConfig
from deeplab.training.trainer import OptimizerMismatch, Trainer, TrainingDiverged

REPO = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
SMALL_MODEL = ["--depth_multiplier=0.35", "--decoder_output_stride=4", "--batch_norm_decay=0.9"]


def decoder_run_config(data, logdir, **fields):
    """A run with the decoder (output stride 4), batch 4, 6 steps."""
    model = ModelConfig(num_classes=6, depth_multiplier=0.35, decoder_output_stride=(4,),
                        batch_norm_decay=0.9, crop_size=(33, 33))
    values = dict(train_crop_size=(33, 33), train_batch_size=4, training_number_of_steps=6,
                  optimizer="adam", adam_learning_rate=1e-3, log_steps=2,
                  save_interval_steps=3, seed=0)
    values.update(fields)
    return TrainConfig(model, str(data), str(logdir), **values)


def test_trainer_runs_saves_and_resumes(tiny_data, tiny_run, tiny_run_log, tmp_path):
    """The shared run (shared_runs.tiny_config: 4 steps, a checkpoint every 2) trained,
    saved and logged; a copy resumes where it stopped."""
    from deeplab.runs.store import load_model

    assert {p.name for p in tiny_run.glob("ckpt-*.index")} == {"ckpt-2.index", "ckpt-4.index"}
    config = json.loads((tiny_run / "config.json").read_text())
    assert config["model"]["num_classes"] == 6 and config["train"]["train_batch_size"] == 2
    assert any(line.startswith("step 2/4 loss") and "img/s ETA" in line
               for line in tiny_run_log)
    more = []
    logdir = copy_run(tiny_run, tmp_path / "train")
    resumed = Trainer(tiny_config(tiny_data, logdir, training_number_of_steps=6),
                      log=more.append)
    assert resumed.restore_or_initialize() == 4
    # A fresh model read from the training directory holds exactly the trained weights.
    loaded = load_model(logdir)
    for trained, restored in zip(resumed.model.weights, loaded.weights):
        np.testing.assert_array_equal(trained.numpy(), restored.numpy(), err_msg=trained.path)
    result = resumed.train()
    assert more[0].startswith(f"resumed from {logdir / 'ckpt-4'} at step 4")
    assert result["step"] == 6 and np.isfinite(result["loss"])
    assert {p.name for p in logdir.glob("ckpt-*.index")} == {"ckpt-2.index", "ckpt-4.index",
                                                             "ckpt-6.index"}
    with pytest.raises(ValueError, match="another model config"):
        other = tiny_config(tiny_data, logdir)
        other.model = ModelConfig(num_classes=6, depth_multiplier=0.5, crop_size=(33, 33))
        Trainer(other, log=lambda line: None).train()


@pytest.mark.slow
def test_resume_converts_keras_sgd_slots_and_refuses_another_optimizer(tiny_data, tmp_path,
                                                                      monkeypatch):
    """A run folder of an earlier release (Keras SGD velocities in the slots) resumes with
    the original's accumulators, accum = -v / lr of the last step; another --optimizer is
    refused with what differs and how to go on, never called damaged."""
    import keras

    from deeplab.training import trainer as trainer_module

    config = decoder_run_config(tiny_data, tmp_path, optimizer="momentum",
                                base_learning_rate=0.01,
                                training_number_of_steps=2)
    with monkeypatch.context() as patch:
        patch.setattr(trainer_module, "make_optimizer", lambda name, rate, momentum, epsilon:
                      keras.optimizers.SGD(rate, momentum=momentum))
        old = Trainer(config, log=lambda line: None)
        old.train()
    velocities = [v.numpy() for v in old.optimizer.momentums]
    assert max(np.abs(v).max() for v in velocities) > 0
    lines = []
    resumed = Trainer(decoder_run_config(tiny_data, tmp_path, optimizer="momentum",
                                         base_learning_rate=0.01, training_number_of_steps=3),
                      log=lines.append)
    assert resumed.restore_or_initialize() == 2
    rate = float(resumed.schedule(1))  # the rate of the second update
    for velocity, accumulator in zip(velocities, resumed.optimizer.accumulators):
        np.testing.assert_allclose(accumulator.numpy(), -velocity / rate, rtol=1e-5, atol=1e-9)
    assert any("holds Keras SGD momentum slots" in line for line in lines)
    with pytest.raises(OptimizerMismatch) as error:
        Trainer(decoder_run_config(tiny_data, tmp_path, optimizer="adam"),
                log=lines.append).restore_or_initialize()
    assert str(error.value) == (
        f"{tmp_path / 'ckpt-2'} was written by a run with --optimizer=momentum and this "
        "command gives --optimizer=adam: resume with --optimizer=momentum, or start a new "
        f"--train_logdir with --tf_initial_checkpoint={tmp_path / 'ckpt-2'} to go on from its "
        "weights with adam")
    assert not any("cannot be read" in line for line in lines)


def test_image_pyramid_loss_covers_the_merged_and_each_scale_s_logits(tiny_data, tmp_path):
    """The original's add_softmax_cross_entropy_loss_for_each_scale: one loss on the merged
    logits and one on each scale's (labels void outside), summed."""
    import tensorflow as tf

    from deeplab.training.losses import softmax_cross_entropy

    config = decoder_run_config(tiny_data, tmp_path)
    # No concat projection, so no dropout: the training-mode pass is deterministic.
    config.model = ModelConfig(num_classes=6, depth_multiplier=0.35, crop_size=(33, 33),
                               image_pyramid=(0.5, 1.0), merge_method="avg",
                               aspp_with_concat_projection=False)
    trainer = Trainer(config, log=lambda line: None)
    rng = np.random.default_rng(0)
    images = tf.constant(rng.uniform(0, 255, (2, 33, 33, 3)).astype("float32"))
    labels = rng.integers(0, 6, (2, 33, 33, 1)).astype("int32")
    labels[:, :, :4] = 255
    outputs = trainer.model.training_logits_model()(images, training=False)
    assert len(outputs) == 3
    by_hand = sum(float(softmax_cross_entropy(o, labels, 6, 255)) for o in outputs)
    for layer in trainer.model._flatten_layers():
        if hasattr(layer, "update_statistics"):
            layer.update_statistics = False  # the same forward as the call above
    loss, _, _ = trainer._loss_and_gradients(images, tf.constant(labels))
    assert float(loss) == pytest.approx(by_hand, rel=1e-5)


@pytest.mark.slow
def test_divergence_stops_and_keeps_the_last_good_checkpoint(tiny_data, tmp_path):
    config = decoder_run_config(tiny_data, tmp_path, optimizer="momentum",
                                base_learning_rate=1e9,
                                learning_policy="step", training_number_of_steps=20,
                                save_interval_steps=1)
    with pytest.raises(TrainingDiverged) as error:
        Trainer(config, log=lambda line: None).train()
    # Here the BN moving variances overflow while the loss is still finite: a checkpoint of
    # that step would hold Inf (an earlier release saved it). The line names the variables.
    assert re.match(r"at step \d+ NaN/Inf in \d+ variables? \(\S+moving_variance", str(error.value))
    assert "the last good checkpoint (" in str(error.value)
    saved = sorted(int(p.name[5:-6]) for p in tmp_path.glob("ckpt-*.index"))
    assert saved and saved[-1] < 20
    for step in saved:  # every checkpoint written holds finite values only
        reader = tf.train.load_checkpoint(str(tmp_path / f"ckpt-{step}"))
        for name, dtype in reader.get_variable_to_dtype_map().items():
            if dtype.is_floating:
                assert np.all(np.isfinite(reader.get_tensor(name))), (step, name)


def test_num_classes_must_match_the_dataset(tiny_data, tmp_path):
    config = decoder_run_config(tiny_data, tmp_path)
    config.model = ModelConfig(num_classes=4, depth_multiplier=0.35, crop_size=(33, 33))
    with pytest.raises(ValueError, match="set --num_classes=6"):
        Trainer(config, log=lambda line: None).train()


def run_binary(module, *args, timeout=600):
    return subprocess.run([sys.executable, "-m", module, *args], capture_output=True,
                          text=True, env=ENV, timeout=timeout, cwd=REPO)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--train_logdir=/tmp/x"], "deeplab-train: --dataset_dir is required."),
        pytest.param(["--train_logdir=/tmp/x", "--dataset_dir=/nonexistent"],
                     "deeplab-train: --dataset_dir /nonexistent is not a directory.",
                     marks=pytest.mark.slow),
        pytest.param(["--train_logdir={tmp}", "--dataset_dir={data}", "--dataset=no_such_set"],
                     "no_such_set", marks=pytest.mark.slow),
        pytest.param(["--train_logdir={tmp}", "--dataset_dir={data}", "--train_crop_size=33"],
                     "deeplab-train: --train_crop_size: takes two positive sizes 'height,width', "
                     "got (33,)", marks=pytest.mark.slow),
        (["--train_logdir={tmp}", "--dataset_dir={data}", "--num_classes=4"],
         "deeplab-train: --num_classes 4 does not match the dataset's 6 classes"),
    ],
)
def test_bad_train_flags_give_one_line(tiny_data, tmp_path, args, message):
    args = [a.format(tmp=tmp_path / "logs", data=tiny_data) for a in args]
    result = run_binary("deeplab.cli.train", *args, *SMALL_MODEL, "--training_number_of_steps=1",
                        "--train_batch_size=2")
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert message in last and "Traceback" not in result.stderr


def test_eval_and_vis_binaries(tiny_data, tiny_run, tmp_path):
    result = run_binary("deeplab.cli.eval", f"--checkpoint_dir={tiny_run}",
                        f"--dataset_dir={tiny_data}", f"--eval_logdir={tmp_path / 'eval'}",
                        "--eval_scales=0.75,1.0", "--add_flipped_images")
    assert result.returncode == 0, result.stderr[-2000:]
    metrics = json.loads((tmp_path / "eval" / "metrics-4.json").read_text())
    assert metrics["step"] == 4 and 0.0 <= metrics["miou"] <= 1.0
    assert metrics["class_names"][1] == "disc" and "miou" in result.stdout
    assert metrics["num_pixels"] > 0
    # The last lines say where the pictures are.
    last = "\n".join(result.stdout.strip().splitlines()[-2:])
    for name in ("confusion-4.png", "iou-4.png", "confusion-4.csv"):
        assert f"{tmp_path / 'eval' / name}" in last and (tmp_path / "eval" / name).is_file()
    result = run_binary("deeplab.cli.vis", f"--checkpoint_dir={tiny_run}",
                        f"--dataset_dir={tiny_data}", f"--vis_logdir={tmp_path / 'vis'}",
                        "--also_save_raw_predictions", "--colormap_type=ade20k",
                        "--save_worst=2")
    assert result.returncode == 0, result.stderr[-2000:]
    worst = tmp_path / "vis" / "worst"
    assert result.stdout.strip().splitlines()[-1] == (
        f"their panels: {worst / 'contact_sheet.png'} ({worst / 'index.html'})")
    assert len(list(worst.glob("0[12]_*.png"))) == 2
    results = tmp_path / "vis" / "segmentation_results"
    assert {p.name for p in results.iterdir()} >= {"000000_image.png", "000000_prediction.png",
                                                   "000003_overlay.png"}
    # Predictions are painted with the ADE20K colours of their raw class ids.
    from PIL import Image

    from deeplab.inference.colormap import get_colormap

    raws = [np.asarray(Image.open(p))
            for p in sorted((tmp_path / "vis" / "raw_segmentation_results").iterdir())]
    painted = np.asarray(Image.open(results / "000000_prediction.png"))[..., :3]
    assert any(np.array_equal(painted, get_colormap("ade20k")[raw]) for raw in raws)
    assert len(list((tmp_path / "vis" / "raw_segmentation_results").iterdir())) == 4
    result = run_binary("deeplab.cli.eval", f"--checkpoint_dir={tmp_path / 'none'}",
                        f"--dataset_dir={tiny_data}", f"--eval_logdir={tmp_path / 'e2'}")
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1].startswith("deeplab-eval: ")


@pytest.mark.slow
def test_watch_stops_after_the_timeout(tiny_data, tiny_run, tmp_path):
    start = time.monotonic()
    result = run_binary("deeplab.cli.eval", f"--checkpoint_dir={tiny_run}",
                        f"--dataset_dir={tiny_data}", f"--eval_logdir={tmp_path / 'eval'}",
                        "--watch", "--watch_timeout=3", "--eval_interval_secs=0")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "no new checkpoint for 3s; stopping." in result.stdout
    assert (tmp_path / "eval" / "metrics-4.json").is_file()
    assert time.monotonic() - start < 120


@pytest.mark.slow
@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_mixed_precision_training_keeps_float32_logits_and_loss(tiny_data, tmp_path, policy):
    trainer = Trainer(decoder_run_config(tiny_data, tmp_path, mixed_precision=policy,
                                         training_number_of_steps=2), log=lambda line: None)
    assert trainer.model.get_layer("aspp").compute_dtype == policy.split("_")[1]
    assert all(v.dtype == "float32" for v in trainer.model.weights)
    if policy == "mixed_float16":
        import keras

        assert isinstance(trainer.optimizer, keras.optimizers.LossScaleOptimizer)
    result = trainer.train()
    assert result["step"] == 2 and np.isfinite(result["loss"])
    assert trainer.model.output.dtype == "float32"


@pytest.mark.slow
def test_tensorboard_scalars_and_image_summaries(tiny_data, tmp_path):
    import tensorflow as tf

    Trainer(decoder_run_config(tiny_data, tmp_path, save_summaries_images=True,
                               save_summaries_secs=0, training_number_of_steps=2, log_steps=1),
            log=lambda line: None).train()
    tags = set()
    for events in tmp_path.glob("events.out.tfevents.*"):
        for event in tf.compat.v1.train.summary_iterator(str(events)):
            tags.update(value.tag for value in event.summary.value)
    assert {"loss/cross_entropy", "learning_rate", "images_per_second", "steps_per_second",
            "image", "label", "prediction"} <= tags


@pytest.mark.slow
def test_convert_to_tflite_int8_from_records(tiny_data, tmp_path):
    from deeplab.config import ModelConfig
    from deeplab.model import DeepLab
    from deeplab.runs.store import save_model

    weights = save_model(DeepLab(ModelConfig(num_classes=6, depth_multiplier=0.35)),
                         tmp_path / "m.weights.h5")
    output = tmp_path / "m_int8.tflite"
    result = subprocess.run(
        [sys.executable, str(REPO / "export/convert_to_tflite.py"), f"--checkpoint_path={weights}",
         "--crop_size=33,33", "--quantization=int8", f"--dataset_dir={tiny_data}",
         "--calibration_steps=4", f"--output_tflite_path={output}"],
        capture_output=True, text=True, env=ENV, timeout=300, cwd=REPO)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "QUANTIZE" in result.stdout and "ARG_MAX" in result.stdout
    labels = (tmp_path / "m_int8.labels.txt").read_text().split()
    assert labels[:2] == ["background", "disc"] and len(labels) == 6
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(output))
    assert interpreter.get_input_details()[0]["dtype"] == np.uint8


def test_seed_fixes_the_initial_weights(tiny_data, tmp_path):
    def initial(seed, name):
        trainer = Trainer(decoder_run_config(tiny_data, tmp_path / name, seed=seed),
                          log=lambda _: None)
        return [np.asarray(w) for w in trainer.model.weights]

    first, again, other = initial(0, "a"), initial(0, "b"), initial(1, "c")
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert not all(np.array_equal(a, b) for a, b in zip(first, other))
