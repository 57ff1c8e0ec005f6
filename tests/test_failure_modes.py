"""Nothing lost, nothing silent: failure modes found by trying the binaries as a user would."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from data_test_utils import blocks_label, read_records, rgb, save
from shared_runs import ENV, REPO, last_line, run_binary, tiny_config

from deeplab.data.errors import DataError
from deeplab.data.synthetic import SyntheticConfig, build_synthetic
from deeplab.data.writer import Sample, Task, build_records
from deeplab.runs.lock import LOCK_NAME, RunFolderBusy, RunLock
from deeplab.training.trainer import Trainer


# === 2. Records without labels ===
def _samples(count, label_value=None):
    return [Sample(f"x{i}", rgb(32, 32, seed=i),
                   None if label_value is None else np.full((32, 32), label_value, np.uint8),
                   f"x{i}") for i in range(count)]


def records_without_labels(directory: Path, mark_unlabeled: bool) -> None:
    """Records written by another tool: no label key at all (and maybe marked unlabeled)."""
    import dataclasses

    import tensorflow as tf

    from deeplab.data import image_io, records
    from deeplab.data.descriptor import write_dataset_json
    from deeplab.data.synthetic import synthetic_descriptor

    directory.mkdir(parents=True)
    with tf.io.TFRecordWriter(str(directory / "train-00000-of-00001.tfrecord")) as writer:
        for i in range(2):
            writer.write(records.encode_example({
                records.IMAGE_ENCODED: image_io.encode_png(rgb(32, 32, seed=i)),
                records.IMAGE_FILENAME: f"x{i}", records.IMAGE_FORMAT: "png",
                records.IMAGE_HEIGHT: 32, records.IMAGE_WIDTH: 32}))
    descriptor = synthetic_descriptor(SyntheticConfig(splits_to_sizes={"train": 2}))
    if mark_unlabeled:
        descriptor = dataclasses.replace(descriptor, unlabeled_splits=("train",))
    write_dataset_json(str(directory), descriptor)


@pytest.mark.parametrize("mark_unlabeled, message", [
    (False, r"train-00000-of-00001\.tfrecord: record 0 has no label "
            r"\('image/segmentation/class/encoded' is missing\)"),
    (True, r"split 'train' is marked unlabeled in synthetic's dataset\.json"),
])
def test_training_and_eval_need_labels(tmp_path, mark_unlabeled, message):
    records_without_labels(tmp_path / "data", mark_unlabeled)
    with pytest.raises(DataError, match=message):
        Trainer(tiny_config(tmp_path / "data", tmp_path / "train"),
                log=lambda line: None).train()
    assert not list((tmp_path / "train").glob("ckpt-*"))
    # Eval refuses the split before loading anything.
    result = run_binary("deeplab.cli.eval", f"--checkpoint_dir={tmp_path / 'train'}",
                        f"--dataset_dir={tmp_path / 'data'}", "--eval_split=train",
                        f"--eval_logdir={tmp_path / 'eval'}")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert last_line(result).startswith("deeplab-eval: ")
    assert "need labelled records" in last_line(result)
    assert not (tmp_path / "eval" / "metrics.json").exists()


@pytest.mark.slow
def test_mostly_void_split_warns_in_the_converter_and_at_train_start(tmp_path, caplog):
    from deeplab.data.synthetic import synthetic_descriptor

    descriptor = synthetic_descriptor(SyntheticConfig(splits_to_sizes={"train": 4}))
    with caplog.at_level(logging.WARNING, logger="deeplab.data"):
        build_records(str(tmp_path / "data"), descriptor,
                      {"train": [Task(_samples, (4, 255), 4)]}, 1)
    assert "train: 100.0% of the label pixels are void (ignore label 255)" in caplog.text
    info = json.loads((tmp_path / "data" / "dataset.json").read_text())["splits"]["train"]
    assert info["void_fraction"] == 1.0
    lines = []
    Trainer(tiny_config(tmp_path / "data", tmp_path / "train", training_number_of_steps=1),
            log=lines.append).train()
    assert any(line.startswith("warning: 100.0% of the label pixels in the first records of "
                               "split 'train' are void") for line in lines)


# === 3. One trainer per run folder ===
@pytest.mark.slow
def test_second_trainer_on_a_run_folder_fails_naming_the_holder(tiny_data, tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from deeplab.runs.lock import RunLock;"
         " lock = RunLock(sys.argv[1]).acquire(); print('held', flush=True); time.sleep(120)",
         str(tmp_path / "train")], stdout=subprocess.PIPE, text=True, env=ENV, cwd=REPO)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(RunFolderBusy, match=rf"in use by another trainer \(PID {holder.pid} "
                                                rf"on {os.uname().nodename}"):
            Trainer(tiny_config(tiny_data, tmp_path / "train"), log=lambda line: None).train()
        result = run_binary("deeplab.cli.train", f"--dataset_dir={tiny_data}",
                            f"--train_logdir={tmp_path / 'train'}", "--depth_multiplier=0.35",
                            "--train_crop_size=33,33", "--train_batch_size=2",
                            "--training_number_of_steps=1")
        assert result.returncode == 1 and "Traceback" not in result.stderr
        assert f"in use by another trainer (PID {holder.pid}" in last_line(result)
        assert not list((tmp_path / "train").glob("ckpt-*"))
    finally:
        holder.kill()
        holder.wait()
    # The holder died without releasing: the next trainer takes the lock over and says so.
    lines = []
    Trainer(tiny_config(tiny_data, tmp_path / "train", training_number_of_steps=1),
            log=lines.append).train()
    assert lines[0].startswith(f"took over the lock of {tmp_path / 'train'} from PID "
                               f"{holder.pid}")
    # A clean exit leaves an empty holder record: nothing to take over next time.
    assert (tmp_path / "train" / LOCK_NAME).read_text() == ""
    with RunLock(tmp_path / "train") as lock:
        assert lock.took_over is None


# === 4. One unreadable file does not abort a predict batch; 8. training dirs load ===
@pytest.mark.slow
def test_predict_writes_the_readable_inputs_and_reports_the_rest(tiny_run, tmp_path):
    from test_exif import encoded

    logdir = tiny_run
    photos = tmp_path / "photos"
    photos.mkdir()
    save(rgb(30, 40), photos / "good.png")
    (photos / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not a JPEG")
    # A phone photo stored sideways: the mask comes out the way a viewer shows the photo.
    (photos / "phone.jpg").write_bytes(encoded(rgb(20, 36), 6))
    result = run_binary("deeplab.cli.predict", f"--model={logdir}", f"--input={photos}",
                        f"--output_dir={tmp_path / 'out'}", "--max_size=65")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "1 of 3 inputs could not be read (the other 2 are written)" in result.stderr
    assert "broken.jpg" in result.stderr.strip().splitlines()[-1]
    from PIL import Image

    out = tmp_path / "out"
    assert np.asarray(Image.open(out / "good_mask.png")).shape == (30, 40)
    assert np.asarray(Image.open(out / "phone_mask.png")).shape == (36, 20)
    assert not (out / "broken_mask.png").exists()


# === 5. Unwritable output folder; 6. duplicate names in a split list ===
def test_unwritable_output_dir_is_one_line(tmp_path):
    save(rgb(8, 10), tmp_path / "images" / "a.png")
    save(blocks_label(8, 10), tmp_path / "masks" / "a.png")
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    result = subprocess.run(
        [sys.executable, str(REPO / "datasets" / "build_image_folder_data.py"),
         f"--image_folder={tmp_path / 'images'}", f"--mask_folder={tmp_path / 'masks'}",
         "--num_classes=3", "--val_fraction=0", f"--output_dir={blocker / 'records'}"],
        capture_output=True, text=True, env=ENV, timeout=300, cwd=REPO)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert last_line(result).startswith(f"error: cannot write to the output folder "
                                        f"'{blocker / 'records'}': ")
    assert "choose a writable --output_dir" in last_line(result)


def voc_layout(root: Path, names: list[str]) -> Path:
    for name in set(names):
        save(rgb(8, 10), root / "JPEGImages" / f"{name}.jpg")
        save(blocks_label(8, 10), root / "SegmentationClass" / f"{name}.png", palette=True)
    lists = root / "ImageSets" / "Segmentation"
    lists.mkdir(parents=True)
    (lists / "val.txt").write_text("\n".join(names) + "\n")
    return root


@pytest.mark.parametrize("keep_duplicates, written", [(False, 2), (True, 3)])
def test_duplicate_list_names_are_written_once_unless_asked(tmp_path, caplog, keep_duplicates,
                                                            written):
    from deeplab.data.converters.voc import convert_voc2012

    root = voc_layout(tmp_path / "VOC", ["a", "b", "a"])
    with caplog.at_level(logging.WARNING, logger="deeplab.data"):
        convert_voc2012(str(root / "JPEGImages"), str(root / "SegmentationClass"),
                        str(root / "ImageSets" / "Segmentation"), str(tmp_path / "rec"),
                        keep_duplicates=keep_duplicates)
    assert [r["filename"] for r in read_records(tmp_path / "rec", "val")] == \
        (["a", "b", "a"] if keep_duplicates else ["a", "b"])
    assert len(read_records(tmp_path / "rec", "val")) == written
    warned = "names 1 image(s) more than once (a x2); each is written once" in caplog.text
    assert warned != keep_duplicates


# === 7. Killed converters leave no workers behind ===
def _children(pid: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.add(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc (Linux)")
def test_workers_exit_when_the_converter_is_killed(tmp_path):
    converter = subprocess.Popen(
        [sys.executable, str(REPO / "datasets" / "make_synthetic_data.py"),
         f"--output_dir={tmp_path / 'rec'}", "--train_size=20000", "--val_size=10",
         "--num_workers=2"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV,
        cwd=REPO)
    deadline = time.monotonic() + 120
    workers: set[int] = set()
    while time.monotonic() < deadline and len(workers) < 2:
        # Workers are the converter's python children (the spawn tracker is one too).
        workers = _children(converter.pid)
        time.sleep(0.2)
    assert len(workers) >= 2, "the converter did not start its workers"
    time.sleep(2)  # let them take tasks
    converter.send_signal(signal.SIGKILL)
    converter.wait()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and any(_alive(p) for p in workers):
        time.sleep(0.2)
    assert not [p for p in workers if _alive(p)]


# === 8. Quiet, exact loading ===
def test_loading_a_checkpoint_is_quiet_and_the_last_save_is_logged_once(tiny_run, tiny_run_log,
                                                                       tiny_data, tmp_path):
    logdir, lines = tiny_run, tiny_run_log
    assert sum(line == f"saved {logdir / 'ckpt-4'}" for line in lines) == 1
    result = run_binary("deeplab.cli.eval", f"--checkpoint_dir={logdir}",
                        f"--dataset_dir={tiny_data}", f"--eval_logdir={tmp_path / 'eval'}")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "could not be found" not in result.stderr + result.stdout
    assert "Unresolved object" not in result.stderr + result.stdout


@pytest.mark.slow
def test_checkpoint_of_other_classes_names_both_numbers(tiny_run, tmp_path):
    from deeplab.data.descriptor import DatasetDescriptor, write_dataset_json

    logdir = tiny_run
    data = tmp_path / "cityscapes_like"
    build_synthetic(str(data), SyntheticConfig(splits_to_sizes={"val": 1}, height=32,
                                               width=32), num_shards=1)
    nineteen = DatasetDescriptor("nineteen", {"val": 1}, num_classes=19, ignore_label=255)
    (data / "dataset.json").unlink()
    write_dataset_json(str(data), nineteen)
    for module, extra in (("deeplab.cli.eval", f"--eval_logdir={tmp_path / 'e'}"),
                          ("deeplab.cli.vis", f"--vis_logdir={tmp_path / 'v'}")):
        result = run_binary(module, f"--checkpoint_dir={logdir}", f"--dataset_dir={data}",
                            extra)
        assert result.returncode == 1 and "Traceback" not in result.stderr
        assert "predicts 6 classes but nineteen has 19" in last_line(result)
