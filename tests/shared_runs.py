"""What many test files need, built once per test session and shared by the xdist workers.

The suite runs on pytest-xdist workers (separate processes), so a session fixture alone
would still be built once per worker. ``build_once`` builds into a folder that every worker
of the session sees, under a file lock: the first worker builds, the others wait and reuse.
Shared runs are read-only: a test that changes a run works on ``copy_run(run, tmp_path)``.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# Binaries run quiet and on the CPU, as in CI.
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}


def shared_folder(tmp_path_factory) -> Path:
    """A folder of this test session that every xdist worker sees (the workers' base
    temporary folders share a parent; without xdist, the session's own base folder)."""
    base = tmp_path_factory.getbasetemp()
    folder = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "shared"
    folder.mkdir(exist_ok=True)
    return folder


def build_once(tmp_path_factory, name: str, build: Callable[[Path], object]) -> Path:
    """``build(folder)`` once per session, whichever worker asks first; the others wait
    for it and get the same folder. A build that raised is tried again by the next asker."""
    shared = shared_folder(tmp_path_factory)
    target = shared / name
    with open(shared / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (shared / f"{name}.complete").exists():
            shutil.rmtree(target, ignore_errors=True)
            target.mkdir()
            build(target)
            (shared / f"{name}.complete").touch()
    return target


def copy_run(run: Path, destination: Path) -> Path:
    """A private copy of a shared run folder, for a test that changes it."""
    shutil.copytree(run, destination, dirs_exist_ok=True)
    return destination


def run_binary(module: str, *args: str, timeout: int = 600, env: dict | None = None,
               ) -> subprocess.CompletedProcess:
    """``python -m <module> args...`` from the repository, output captured as text."""
    return subprocess.run([sys.executable, "-m", module, *args], capture_output=True,
                          text=True, env=env or ENV, timeout=timeout, cwd=REPO)


def last_line(result: subprocess.CompletedProcess) -> str:
    """The last line a binary wrote to stderr (where one-line errors go)."""
    return result.stderr.strip().splitlines()[-1]


def tiny_config(data, logdir, **fields):
    """The small training run most tests use: MobileNetV2 (depth multiplier 0.35) on 33x33
    crops, batch 2, 4 Adam steps, a checkpoint every 2 steps (ckpt-2, ckpt-4), seeded."""
    from deeplab.config import ModelConfig
    from deeplab.training.train_config import TrainConfig

    model = ModelConfig(num_classes=6, depth_multiplier=0.35, batch_norm_decay=0.9,
                        crop_size=(33, 33))
    values = dict(train_crop_size=(33, 33), train_batch_size=2, training_number_of_steps=4,
                  optimizer="adam", adam_learning_rate=1e-3, log_steps=2,
                  save_interval_steps=2, seed=0)
    values.update(fields)
    return TrainConfig(model, str(data), str(logdir), **values)
