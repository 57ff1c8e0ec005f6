"""A training run loses nothing and saves nothing broken: NaN/Inf never checkpointed or
loaded, an exploding loss said, SIGTERM/SIGINT saved, another optimizer or model named, a
failed save cleaned up."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from shared_runs import ENV, REPO, copy_run, last_line, run_binary, tiny_config

from deeplab.config import ModelConfig
from deeplab.training.safeguards import LossWatch, StopSignals
from deeplab.training.trainer import Trainer

TRAIN = [sys.executable, "-m", "deeplab.cli.train", "--depth_multiplier=0.35",
         "--train_crop_size=33,33", "--train_batch_size=2", "--optimizer=adam", "--seed=0"]


# === 1. NaN/Inf: never saved, never resumed, evaluated or exported ===
@pytest.mark.slow
def test_a_checkpoint_holding_inf_is_never_resumed_evaluated_or_exported(tiny_data, tiny_run,
                                                                         tmp_path):
    logdir = copy_run(tiny_run, tmp_path / "train")  # ckpt-2, ckpt-4
    trainer = Trainer(tiny_config(tiny_data, logdir), log=lambda line: None)
    assert trainer.restore_or_initialize() == 4
    # What an earlier release wrote after a divergence: the next checkpoint with an Inf.
    variance = next(v for v in trainer.model.weights if v.path.endswith("moving_variance"))
    variance.assign(np.full(variance.shape, np.inf, "float32"))
    trainer.checkpoints.manager.save(checkpoint_number=5)
    message = (f"{logdir / 'ckpt-5'} holds NaN/Inf in 1 variable ({variance.path}): it was "
               "saved after training diverged; give an earlier ckpt-N of the run")
    result = run_binary("deeplab.cli.eval", f"--checkpoint_dir={logdir}",
                        f"--dataset_dir={tiny_data}", f"--eval_logdir={tmp_path / 'eval'}")
    assert result.returncode == 1 and last_line(result) == f"deeplab-eval: {message}"
    result = run_binary("deeplab.cli.export_model", f"--checkpoint_path={logdir}",
                        f"--export_path={tmp_path / 'export'}")
    assert result.returncode == 1 and message in last_line(result)
    assert not (tmp_path / "export").exists()
    lines = []
    result = Trainer(tiny_config(tiny_data, logdir, training_number_of_steps=6),
                     log=lines.append).train()
    assert lines[0] == (f"{logdir / 'ckpt-5'} holds NaN/Inf in 1 variable ({variance.path}) "
                        "(saved after training diverged); trying the one before")
    assert f"resumed from {logdir / 'ckpt-4'} at step 4" in lines
    assert result["step"] == 6


def test_an_exploding_loss_is_said_once():
    """By hand: the reference is the smaller of the first loss and the running median; 1.3e4
    is 1e4 times 1.3. A slow climb (x10 a step) is measured from the first loss, 1."""
    watch = LossWatch(factor=1000, window=50)
    assert [watch.update(x) for x in (1.3, 1.2, 1.4, 1.3, 1.3, 2.0)] == [None] * 6
    assert watch.update(1.3e4) == pytest.approx(1.3)
    assert watch.update(1.4e11) is None  # once
    climb = LossWatch(factor=1000, window=50)
    assert [climb.update(x) for x in (1.0, 10.0, 100.0, 1000.0)] == [None] * 4
    assert climb.update(1e4) == 1.0
    assert LossWatch().update(1e9) is None  # no history, no judgement


@pytest.mark.slow
def test_adam_at_a_huge_rate_warns_that_the_loss_explodes(tiny_data, tmp_path):
    lines = []
    config = tiny_config(tiny_data, tmp_path, adam_learning_rate=1e5,
                         training_number_of_steps=30, save_interval_steps=0, log_steps=30)
    try:
        Trainer(config, log=lines.append).train()
    except Exception as error:  # it may also overflow later: then NaN/Inf is named
        assert "NaN/Inf" in str(error) or " is inf" in str(error) or " is nan" in str(error)
    warnings = [line for line in lines if line.startswith("warning: the loss is")]
    assert len(warnings) == 1, lines
    assert "times what it was" in warnings[0] and "--adam_learning_rate" in warnings[0]


# === 2. SIGTERM / SIGINT: finish the step, save it, exit; resume there ===
def _train_until_it_logs(args, tmp_path, env):
    process = subprocess.Popen([*TRAIN, *args], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, env=env, cwd=REPO)
    seen = []
    deadline = time.monotonic() + 300
    for line in process.stdout:
        seen.append(line.rstrip())
        if line.startswith("step 3/"):
            return process, seen
        assert time.monotonic() < deadline, seen[-20:]
    raise AssertionError("\n".join(seen[-30:]))


@pytest.mark.slow
@pytest.mark.parametrize("number, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_stop_signal_saves_the_step_and_the_same_command_resumes(tiny_data, tmp_path,
                                                                    number, code):
    env = {**ENV, "PYTHONUNBUFFERED": "1"}
    args = [f"--dataset_dir={tiny_data}", f"--train_logdir={tmp_path / 'train'}",
            "--training_number_of_steps=100000", "--log_steps=1"]
    process, seen = _train_until_it_logs(args, tmp_path, env)
    process.send_signal(number)
    rest, _ = process.communicate(timeout=120)
    lines = seen + rest.splitlines()
    assert process.returncode == code, lines[-20:]
    name = signal.Signals(number).name
    stop = [line for line in lines if line.startswith(f"{name}: stopped after step")]
    assert len(stop) == 1, lines[-20:]
    step = int(stop[0].split()[4])
    assert stop[0] == (f"{name}: stopped after step {step} and saved it; run the same command "
                       "to resume")
    assert f"saved {tmp_path / 'train' / f'ckpt-{step}'}" in lines
    assert "Traceback" not in rest
    resumed = subprocess.run([*TRAIN, *args[:2], f"--training_number_of_steps={step + 1}"],
                             capture_output=True, text=True, env=env, cwd=REPO, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"resumed from {tmp_path / 'train' / f'ckpt-{step}'} at step {step}" in (
        resumed.stdout + resumed.stderr)


@pytest.mark.slow
def test_sigterm_after_the_last_step_waits_for_the_last_checkpoint(tiny_data, tmp_path):
    """A job's time limit at the very end of a run: SIGTERM sent when the last step is
    logged lands while ckpt-3 (saved after the loop) is written. It is completed, listed
    and said; before, the restored default action ended the process with no checkpoint."""
    env = {**ENV, "PYTHONUNBUFFERED": "1"}
    logdir = tmp_path / "train"
    process, seen = _train_until_it_logs([f"--dataset_dir={tiny_data}",
                                          f"--train_logdir={logdir}",
                                          "--training_number_of_steps=3", "--log_steps=1"],
                                         tmp_path, env)  # returns at "step 3/3"
    process.send_signal(signal.SIGTERM)
    rest, _ = process.communicate(timeout=120)
    lines = seen + rest.splitlines()
    assert process.returncode == 143, lines[-20:]
    assert ("SIGTERM: received at the end of the run; its last checkpoint (step 3) is "
            "complete and saved, the run is done") in lines, lines[-20:]
    import tensorflow as tf

    assert tf.train.latest_checkpoint(str(logdir)) == str(logdir / "ckpt-3")
    assert "Traceback" not in rest


def test_a_second_stop_signal_ends_the_process_at_once():
    killed = []
    with StopSignals(signals=(), kill=lambda pid, number: killed.append((pid, number))) as stop:
        stop._handle(signal.SIGTERM, None)
        assert stop.received == signal.SIGTERM and stop.name == "SIGTERM" and not killed
        previous = signal.getsignal(signal.SIGTERM)
        try:
            stop._handle(signal.SIGTERM, None)  # the default action, now
            assert killed == [(os.getpid(), signal.SIGTERM)]
            assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
        finally:
            signal.signal(signal.SIGTERM, previous)


# === 3. A good run is never called damaged: what differs, and how to go on ===
def test_another_optimizer_or_model_is_named_not_called_damaged(tiny_data, tiny_run, tmp_path):
    copy_run(tiny_run, tmp_path)
    with pytest.raises(ValueError) as error:
        Trainer(tiny_config(tiny_data, tmp_path, optimizer="momentum"),
                log=lambda line: None).train()
    assert str(error.value) == (
        f"{tmp_path} was written by a run with --optimizer=adam and this command gives "
        "--optimizer=momentum: resume with --optimizer=adam, or start a new --train_logdir "
        f"with --tf_initial_checkpoint={tmp_path} to go on from its weights with momentum")
    other = tiny_config(tiny_data, tmp_path)
    other.model = ModelConfig(num_classes=6, depth_multiplier=0.5, batch_norm_decay=0.9,
                              crop_size=(33, 33))
    with pytest.raises(ValueError) as error:
        Trainer(other, log=lambda line: None).train()
    assert "--depth_multiplier=0.35 there, 0.5 here" in str(error.value)
    assert "damaged" not in str(error.value)


# === 4. A failed save: one line, the previous checkpoint intact, nothing partial ===
def _file_size_limit(limit):
    def apply():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past it fails with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


@pytest.mark.slow
def test_a_save_that_cannot_be_written_leaves_the_previous_checkpoint_and_nothing_partial(
        tiny_data, tmp_path):
    logdir = tmp_path / "train"
    args = [f"--dataset_dir={tiny_data}", f"--train_logdir={logdir}", "--save_interval_steps=2"]
    first = subprocess.run([*TRAIN, *args, "--training_number_of_steps=2"], capture_output=True,
                           text=True, env=ENV, cwd=REPO, timeout=300)
    assert first.returncode == 0, first.stderr[-2000:]
    before = {p.name: p.read_bytes() for p in logdir.glob("ckpt-2*")}
    # No file may grow past 200 kB: the next checkpoint's data cannot be written, as on a
    # full disk (the same error path: the write fails midway).
    full = subprocess.run([*TRAIN, *args, "--training_number_of_steps=4"], capture_output=True,
                          text=True, env=ENV, cwd=REPO, timeout=300,
                          preexec_fn=_file_size_limit(200_000))
    assert full.returncode == 1, full.stderr[-2000:]
    assert "Traceback" not in full.stderr
    line = last_line(full)
    assert line.startswith(f"deeplab-train: could not write ckpt-4 in {logdir} (")
    assert line.endswith(f"the previous checkpoint ({logdir / 'ckpt-2'}) is intact and nothing "
                         "half-written is left: free space (or fix the folder) and run the same "
                         "command to resume")
    assert sorted(p.name for p in logdir.glob("ckpt-*")) == sorted(before)
    assert {p.name: p.read_bytes() for p in logdir.glob("ckpt-2*")} == before


# === 7. One line, not a traceback ===
@pytest.mark.slow
def test_tflite_at_a_smaller_crop_converts_and_keras_wrapped_errors_are_one_line(tmp_path):
    import keras

    from deeplab.cli.runner import user_message
    from deeplab.model import build_deeplab
    from deeplab.runs.store import save_model

    # Trained at 65 (image pooling 5x5): converted at 50,37 the pooling is sized from the
    # new crop (4x3), as export_model does; it used to fail inside Keras in nine lines.
    weights = save_model(build_deeplab(num_classes=6, depth_multiplier=0.35,
                                       crop_size=(65, 65)), tmp_path / "m.weights.h5")
    result = run_binary("deeplab.cli.convert_to_tflite", f"--checkpoint_path={weights}",
                        "--crop_size=50,37", f"--output_tflite_path={tmp_path / 'm.tflite'}")
    assert result.returncode == 0, result.stderr[-2000:]
    assert (tmp_path / "m.tflite").stat().st_size > 0

    class Failing(keras.layers.Layer):
        def call(self, x):
            raise ValueError("give --crop_size no larger than the input")

    with pytest.raises(ValueError) as error:
        Failing()(np.zeros((1, 2), "float32"))
    assert "\n" in str(error.value)  # Keras' several lines, with ANSI bold
    assert user_message(error.value) == "give --crop_size no larger than the input"


def test_eval_into_a_file_or_below_one_is_one_line(tiny_run, tiny_data, tmp_path):
    logdir = tiny_run
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    for target, reason in ((blocker, "File exists"), (blocker / "eval", "Not a directory")):
        result = run_binary("deeplab.cli.eval", f"--checkpoint_dir={logdir}",
                            f"--dataset_dir={tiny_data}", f"--eval_logdir={target}")
        assert result.returncode == 1 and "Traceback" not in result.stderr
        assert last_line(result) == (f"deeplab-eval: cannot write to --eval_logdir {target}: "
                                     f"{reason}; choose a writable folder")
