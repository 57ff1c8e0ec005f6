"""Signals are honoured through every save, readers of a live run tolerate rotation, and a
resumed run's refusals name deeplab-train's own flags (issue 31)."""

from __future__ import annotations

import dataclasses
import os
import shutil
import signal

import pytest
import tensorflow as tf
from shared_runs import copy_run, tiny_config

from deeplab.evaluation.watch import checkpoints_to_process, rotation_tolerated
from deeplab.runs.interrupts import Terminated, termination_raises
from deeplab.runs.store import CheckpointRotated, checkpoint_weights, load_model
from deeplab.training.trainer import Trainer


@pytest.fixture
def outer_sigterm():
    """A SIGTERM handler around the test that records what reaches it (the handler a
    trainer restores), so a signal that escapes the code under test cannot end pytest."""
    received = []
    previous = signal.signal(signal.SIGTERM, lambda number, frame: received.append(number))
    yield received
    signal.signal(signal.SIGTERM, previous)


@pytest.mark.slow
def test_a_sigterm_while_the_last_checkpoint_is_written_waits_for_it(tiny_run, tiny_data,
                                                                      tmp_path, outer_sigterm):
    """Resumed at ckpt-4 for one step: SIGTERM arrives as ckpt-5, the last save after the
    loop, is being written. The trainer's handler takes it (not the restored one, whose
    default action ends the process with the save cut short), the save completes and is
    listed, and the run says what happened."""
    logdir = copy_run(tiny_run, tmp_path / "train")
    lines = []
    trainer = Trainer(tiny_config(tiny_data, logdir, training_number_of_steps=5,
                                  save_interval_steps=0), log=lines.append)
    write = trainer.checkpoints.manager.save

    def save_with_a_signal(**arguments):
        os.kill(os.getpid(), signal.SIGTERM)  # delivered to this (the main) thread at once
        return write(**arguments)

    trainer.checkpoints.manager.save = save_with_a_signal
    result = trainer.train()
    assert outer_sigterm == []
    assert result["step"] == 5 and result["stopped_by"] == "SIGTERM"
    assert tf.train.latest_checkpoint(str(logdir)) == str(logdir / "ckpt-5")
    assert lines[-2:] == [f"saved {logdir / 'ckpt-5'}",
                          "SIGTERM: received at the end of the run; its last checkpoint "
                          "(step 5) is complete and saved, the run is done"]


def test_sigterm_to_a_binary_unwinds_and_leaves_no_temporary_folder(tmp_path, monkeypatch,
                                                                   outer_sigterm, capsys):
    """Every binary runs under deeplab.cli.runner: SIGTERM during a long write (a SavedModel
    export, a TFLite file, records, metrics: all written in a hidden temporary folder or
    file, then renamed) raises Terminated, so the temporary is removed on the way out; the
    binary says so in one line and exits with 143. (Its default action left the export's
    hidden folder under --export_path for good.)"""
    from deeplab.cli.runner import run_binary
    from deeplab.runs.atomic import atomic_directory

    def main(argv):
        with atomic_directory(tmp_path / "export" / "1") as temporary:
            (temporary / "saved_model.pb").write_bytes(b"half")
            os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr("sys.argv", ["export_model"])
    with pytest.raises(SystemExit) as exit_status:
        run_binary("export_model", main)
    assert exit_status.value.code == 143
    assert capsys.readouterr().err.splitlines()[-1] == (
        "export_model: SIGTERM: stopped; what was complete is kept, nothing is half-written")
    assert os.listdir(tmp_path / "export") == []
    assert outer_sigterm == []  # the binary's handler took it; then the previous is back
    assert signal.getsignal(signal.SIGTERM) not in (signal.SIG_DFL, signal.SIG_IGN)
    with pytest.raises(Terminated) as stop, termination_raises():
        os.kill(os.getpid(), signal.SIGTERM)
    assert (stop.value.name, stop.value.exit_status) == ("SIGTERM", 143)
    assert isinstance(stop.value, KeyboardInterrupt)  # cleaned up as after Ctrl-C


def test_a_watcher_goes_on_past_a_checkpoint_the_trainer_rotated_away(tiny_run, tmp_path):
    """eval / vis --watch beside a run with --max_to_keep=1: while the watcher builds the
    model for ckpt-4, the trainer saves ckpt-6 and deletes ckpt-4. The watcher says so and
    reads ckpt-6 next; it does not die calling ckpt-4 truncated."""
    run = copy_run(tiny_run, tmp_path / "train")
    lines, loaded = [], []
    for checkpoint in checkpoints_to_process(str(run), 2, 0, 30, "max_number_of_evaluations",
                                             log=lines.append):
        if checkpoint.endswith("ckpt-4"):  # the trainer, as its CheckpointManager rotates
            model = load_model(run)
            manager = tf.train.CheckpointManager(
                tf.train.Checkpoint(weights=checkpoint_weights(model)), str(run), max_to_keep=1,
                checkpoint_name="ckpt")
            manager.save(checkpoint_number=6)
            assert not os.path.exists(f"{checkpoint}.index")
        with rotation_tolerated(checkpoint, str(run), log=lines.append):
            loaded.append(load_model(checkpoint).source_checkpoint)
    assert loaded == [str(run / "ckpt-6")]
    assert lines[1:] == [f"{run / 'ckpt-4'} was removed by the trainer before it was read (it "
                         "keeps its newest --max_to_keep checkpoints); going on with the next one"]


def test_a_checkpoint_removed_while_it_is_read_is_told_apart_from_a_truncated_one(
        tiny_run, tmp_path, monkeypatch):
    """The trainer (--max_to_keep=1) saves ckpt-6 and deletes ckpt-4 between its discovery
    and its read: a ckpt-4 the user gave is refused as rotated, not as damaged; the run's
    directory is read again at its newest checkpoint."""
    read = tf.train.Checkpoint.read

    def read_while_the_trainer_rotates(self, prefix, *arguments):
        prefix = str(prefix)
        run = os.path.dirname(prefix)
        if prefix.endswith("ckpt-4") and os.path.exists(f"{prefix}.index"):
            for name in os.listdir(run):  # as CheckpointManager: list ckpt-6, then sweep
                if name.startswith("ckpt-4."):
                    shutil.copy(os.path.join(run, name),
                                os.path.join(run, name.replace("ckpt-4", "ckpt-6")))
            new = os.path.join(run, "ckpt-6")
            tf.compat.v1.train.update_checkpoint_state(run, new, [new])
            for name in os.listdir(run):
                if name.startswith(("ckpt-4.", "ckpt-2.")):
                    os.remove(os.path.join(run, name))
        return read(self, prefix, *arguments)

    monkeypatch.setattr(tf.train.Checkpoint, "read", read_while_the_trainer_rotates)
    run = copy_run(tiny_run, tmp_path / "given")
    with pytest.raises(CheckpointRotated) as error:
        with rotation_tolerated(str(run / "ckpt-4"), str(run / "ckpt-4")):  # given: not skipped
            load_model(run / "ckpt-4")
    assert str(error.value) == (
        f"{run / 'ckpt-4'} was removed while it was read: the run keeps only its newest "
        "checkpoints (--max_to_keep); give a newer ckpt-N, or the run's directory for its "
        "latest")
    run = copy_run(tiny_run, tmp_path / "directory")
    assert load_model(run).source_checkpoint == str(run / "ckpt-6")


def test_resuming_with_another_train_crop_size_names_the_flag_of_deeplab_train(tiny_run,
                                                                                tiny_data,
                                                                                tmp_path):
    """deeplab-train sets the model's crop from --train_crop_size; the refusal names it."""
    logdir = copy_run(tiny_run, tmp_path / "train")
    config = tiny_config(tiny_data, logdir, train_crop_size=(49, 49))
    config.model = dataclasses.replace(config.model, crop_size=(49, 49))  # as the binary does
    with pytest.raises(ValueError) as error:
        Trainer(config, log=lambda line: None).train()
    assert "(--train_crop_size=(33, 33) there, (49, 49) here)" in str(error.value)
    assert "--crop_size" not in str(error.value)
