"""tf.distribute: 2 replicas with synchronised BN equal one device (MirroredStrategy)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}


def run_step(replicas, tmp_path, initial=None):
    output = tmp_path / f"step{replicas}.npz"
    args = [sys.executable, str(HERE / "distributed_step.py"), str(replicas), str(tmp_path),
            str(tmp_path / f"logs{replicas}"), str(output)]
    if initial is not None:
        args.append(str(initial))
    result = subprocess.run(args, capture_output=True, text=True, env=ENV, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return np.load(output)


def test_two_replicas_match_one_device(tmp_path):
    one = run_step(1, tmp_path)
    two = run_step(2, tmp_path, initial=tmp_path / "step1_initial.npz")
    assert abs(float(one["loss"]) - float(two["loss"])) < 1e-5
    initial = np.load(tmp_path / "step1_initial.npz")
    moved = 0
    for key in one.files:
        if key == "loss":
            continue
        np.testing.assert_allclose(two[key], one[key], atol=1e-5, err_msg=key)
        update_one, update_two = one[key] - initial[key], two[key] - initial[key]
        if np.abs(update_one).max() > 1e-6:
            moved += 1
            # Same direction and size (float32 reductions differ in order across replicas).
            cosine = np.vdot(update_one, update_two) / (
                np.linalg.norm(update_one) * np.linalg.norm(update_two))
            assert cosine > 0.999, key
    assert moved > 50  # the step changed the weights (and BN statistics)
