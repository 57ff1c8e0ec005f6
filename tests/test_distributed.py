"""tf.distribute: 2 replicas with synchronised BN equal one device (MirroredStrategy)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

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


@pytest.mark.slow
def test_two_replicas_match_one_device(tmp_path):
    one = run_step(1, tmp_path)
    two = run_step(2, tmp_path, initial=tmp_path / "step1_initial.npz")
    # The loss is float32 by design (float32 logits and loss under every policy): float32
    # rounding. The weights are float64 (see distributed_step.py): far inside the 1e-5.
    assert abs(float(one["loss"]) - float(two["loss"])) < 1e-6
    initial = np.load(tmp_path / "step1_initial.npz")
    moved = 0
    for key in one.files:
        if key == "loss":
            continue
        assert two[key].dtype == np.float64, key
        np.testing.assert_allclose(two[key], one[key], rtol=0, atol=1e-9, err_msg=key)
        update_one, update_two = one[key] - initial[key], two[key] - initial[key]
        if np.abs(update_one).max() > 1e-6:
            moved += 1
            # Same direction and size.
            cosine = np.vdot(update_one, update_two) / (
                np.linalg.norm(update_one) * np.linalg.norm(update_two))
            assert cosine > 0.999, key
    assert moved > 50  # the step changed the weights (and BN statistics)


def free_port():
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_two_workers_on_localhost_train_and_only_the_chief_writes(tmp_path):
    import json

    from deeplab.data.synthetic import SyntheticConfig, build_synthetic

    data = tmp_path / "data"
    build_synthetic(str(data), SyntheticConfig(splits_to_sizes={"train": 16}, height=32,
                                               width=32), num_shards=2)
    workers = [f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"]
    processes, logs = [], []
    for index in range(2):
        config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        env = {**ENV, "TF_CONFIG": json.dumps(config)}
        # Files, not pipes: an unread pipe fills up and blocks one worker, and with it the
        # collective ops of the other.
        logs.append(open(tmp_path / f"worker{index}.log", "w+"))
        processes.append(subprocess.Popen(
            [sys.executable, "-m", "deeplab.cli.train", "--strategy=multi_worker",
             f"--dataset_dir={data}", f"--train_logdir={tmp_path / 'train'}",
             "--train_crop_size=33,33", "--train_batch_size=4", "--training_number_of_steps=3",
             "--save_interval_steps=2", "--log_steps=1", "--depth_multiplier=0.35",
             "--optimizer=adam", "--seed=0"],
            stdout=logs[-1], stderr=subprocess.STDOUT, text=True, env=env, cwd=HERE.parent))
    try:
        for process in processes:
            process.wait(timeout=600)
    finally:
        for process in processes:
            process.kill()
    outputs = []
    for log in logs:
        log.seek(0)
        outputs.append(log.read())
        log.close()
    for process, output in zip(processes, outputs):
        assert process.returncode == 0, output[-3000:]
    assert "with 2 replica(s)" in outputs[0] and "done at step 3" in outputs[1]
    assert "saved" in outputs[0] and "saved" not in outputs[1]
    names = sorted(p.name for p in (tmp_path / "train").iterdir())
    assert "ckpt-3.index" in names and "config.json" in names
    assert not any(name.startswith(".worker") for name in names)
