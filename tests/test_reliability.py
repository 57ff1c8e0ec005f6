"""Reliability: fuzzed decoders, damaged checkpoints, training killed again and again."""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from shared_runs import ENV, REPO, copy_run, last_line, run_binary, tiny_config

from deeplab.training.trainer import Trainer

HERE = Path(__file__).resolve().parent


@pytest.mark.slow
def test_fuzzed_records_images_and_masks_fail_cleanly(tmp_path):
    """Thousands of corrupt inputs: each decodes or is a DataError naming its file.

    Truncated, bit-flipped, overwritten bytes, headers claiming huge sizes, records with wrong
    types or missing keys, damaged shard framing. The fuzzer runs in a subprocess, so a crash
    or a hang (the timeout) fails here.
    """
    start = time.monotonic()
    result = subprocess.run([sys.executable, str(HERE / "fuzz_decoders.py"), str(tmp_path),
                             "1500", "7"], capture_output=True, text=True, env=ENV, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    counts = json.loads(result.stdout.strip().splitlines()[-1])
    total = 0
    for target, entry in counts.items():
        assert entry["other"] == [], (target, entry["other"][:5])
        total += entry["decoded"] + entry["clean_errors"]
        assert entry["clean_errors"] > 0, target
    assert set(counts) == {"image", "mask", "record", "shard"}
    assert total >= 4500
    assert time.monotonic() - start < 60


def _damage(logdir: Path, step: int, how: str) -> None:
    if how == "truncated data":
        (data,) = logdir.glob(f"ckpt-{step}.data-*")
        data.write_bytes(data.read_bytes()[: data.stat().st_size // 3])
    else:
        (logdir / f"ckpt-{step}.index").unlink()


@pytest.mark.slow
@pytest.mark.parametrize("how", ["truncated data", "missing index"])
def test_damaged_checkpoint_at_resume_and_at_eval(tiny_data, tiny_run, tmp_path, how):
    logdir = copy_run(tiny_run, tmp_path / "train")  # ckpt-2, ckpt-4
    _damage(logdir, 4, how)
    # Eval names the damaged file instead of a traceback (or a silent fresh model).
    result = run_binary("deeplab.cli.eval", f"--checkpoint_dir={logdir}",
                        f"--dataset_dir={tiny_data}", f"--eval_logdir={tmp_path / 'eval'}")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert str(logdir / "ckpt-4") in last_line(result)
    # Training resumes from the newest intact checkpoint, saying which one it skipped.
    lines = []
    result = Trainer(tiny_config(tiny_data, logdir, training_number_of_steps=6),
                     log=lines.append).train()
    assert lines[0].startswith(f"{logdir / 'ckpt-4'} cannot be read (")
    assert f"resumed from {logdir / 'ckpt-2'} at step 2" in lines
    assert result["step"] == 6


@pytest.mark.slow
def test_training_killed_at_random_points_resumes_exactly(tiny_data, tmp_path):
    """Three SIGKILLs at random moments: every resume starts from the last checkpoint on
    disk, at most one save interval behind the last logged step, and the run ends exactly at
    its final step."""
    steps, interval = 30, 3
    args = ["--dataset_dir", str(tiny_data), "--train_logdir", str(tmp_path),
            "--depth_multiplier=0.35", "--train_crop_size=33,33", "--train_batch_size=2",
            f"--training_number_of_steps={steps}", f"--save_interval_steps={interval}",
            "--log_steps=1", "--optimizer=adam", "--seed=0"]
    rng = random.Random(5)
    for kill in range(3):
        process = subprocess.Popen([sys.executable, "-m", "deeplab.cli.train", *args],
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                   env=ENV, cwd=REPO)
        logged, target = 0, rng.randint(2, 7)
        deadline = time.monotonic() + 300
        for line in process.stdout:
            match = re.match(r"step (\d+)/", line)
            if match:
                logged = int(match.group(1))
                target -= 1
                if target == 0:
                    process.send_signal(signal.SIGKILL)
                    break
            assert time.monotonic() < deadline, "training did not log steps"
        process.wait(timeout=60)
        assert logged, f"kill {kill}: no step was logged"
        # Killed before the first save, the run starts again from step 0.
        saved = max((int(p.name[5:-6]) for p in tmp_path.glob("ckpt-*.index")), default=0)
        assert logged - saved <= interval
    result = run_binary("deeplab.cli.train", *args)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    if saved:
        assert f"resumed from {tmp_path / f'ckpt-{saved}'} at step {saved}" in result.stdout
    assert f"done at step {steps}" in result.stdout
    assert os.path.exists(tmp_path / f"ckpt-{steps}.index")
    # The learning rate follows the restored step, so the resumed run logs the same sequence.
    from deeplab.training.schedules import DeepLabLearningRate

    schedule = DeepLabLearningRate("poly", 0.001, steps)
    logged = re.findall(rf"step (\d+)/{steps} loss \S+ \(\+reg \S+\) lr (\S+)", result.stdout)
    assert logged
    for step, lr in logged:
        assert float(lr) == pytest.approx(float(schedule(int(step) - 1)), rel=1e-2)
