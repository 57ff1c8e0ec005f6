"""scripts/gpu_check.py: fails without a GPU when asked for one; runs end to end on the CPU."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}


def gpu_check(*args, timeout=900):
    return subprocess.run([sys.executable, str(REPO / "scripts" / "gpu_check.py"), *args],
                          capture_output=True, text=True, env=ENV, timeout=timeout)


def test_asking_for_a_gpu_without_one_fails_with_one_line():
    result = gpu_check("--device=gpu")
    assert result.returncode == 1
    assert "gpu_check: no GPU visible to TensorFlow" in result.stderr
    assert "--device=cpu" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.slow
def test_cpu_run_trains_compares_serves_and_reports(tmp_path):
    output = tmp_path / "check.json"
    result = gpu_check("--device=cpu", "--size=33", "--batch_sizes=2", "--steps=4",
                       "--timed_steps=1", "--models=mobilenet_v2", "--precisions=float32",
                       "--xla=false,true", "--output_strides=16", f"--output={output}")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    assert "devices: /device:CPU:0" in result.stdout and "PASSED" in result.stdout
    results = json.loads(output.read_text())
    assert [(r["precision"], r["xla"]) for r in results["train"]] == [("float32", False),
                                                                      ("float32", True)]
    for row in results["train"]:
        assert row["ok"] and len(row["losses"]) == 4
        assert row["losses"][-1] < 0.9 * row["losses"][0]
        assert row["train_images_per_s_b2"] > 0
    assert results["forward"][0]["forward_images_per_s_b2"] > 0
    # On a CPU-only machine the parity check compares XLA with TF's CPU kernels.
    (parity,) = results["parity"]
    assert parity["device"] == "/device:CPU:0 XLA" and parity["ok"]
    assert parity["logit_range"] > 1.0  # BN calibrated: the logits do not vanish
    assert results["serving"]["ok"] and results["serving"]["shape"] == [1, 33, 33]
