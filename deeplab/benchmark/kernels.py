"""TensorFlow's portable kernels against oneDNN's, on the same machine, same models.

TensorFlow picks its CPU kernels once, when it starts (``TF_ENABLE_ONEDNN_OPTS``; oneDNN is
on by default only on some x86 CPUs), so each setting runs in a child process of its own.
The children alternate for ``rounds`` rounds and each figure is the fastest of its rounds,
so a busy moment on shared cores does not decide the ratio.

The oneDNN child also times the forward pass traced with single native dilated
depthwise convs (:func:`deeplab.ops.native_dilation`): the kernel a run-time probe could
pick where oneDNN has it. It shows what that path would gain over the portable
space-to-batch form on this machine.

    python -m deeplab.benchmark.kernels '{"config": "mobilenet_v2", "size": 513}'  # one child
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable

import numpy as np

SETTINGS = {"portable": "0", "onednn": "1"}


def measure(config: str, size: int, batch_size: int, train_batch_size: int,
            iterations: int) -> dict:
    """One child's figures: forward and train step ms (and the native-dilation forward)."""
    import tensorflow as tf

    from deeplab.benchmark.forward import build_preset
    from deeplab.benchmark.machine import onednn_enabled
    from deeplab.benchmark.timing import time_call
    from deeplab.benchmark.train_step import train_step_benchmark
    from deeplab.ops import native_dilation

    model = build_preset(config)
    rng = np.random.default_rng(0)
    images = tf.constant(rng.uniform(0, 255, (batch_size, size, size, 3)).astype(np.float32))
    forward = tf.function(lambda x: model(x, training=False))
    result = {"onednn": onednn_enabled(),
              "forward_ms": 1000 * time_call(lambda: forward(images).numpy(),
                                             iterations).min_s}
    if result["onednn"]:
        native = tf.function(lambda x: model(x, training=False))
        with native_dilation():
            native.get_concrete_function(images)
        try:
            result["forward_native_dilation_ms"] = 1000 * time_call(
                lambda: native(images).numpy(), iterations).min_s
        except tf.errors.OpError as error:  # no oneDNN kernel for it on this CPU / dtype
            result["forward_native_dilation_ms"] = f"unavailable: {error.message[:120]}"
    train = train_step_benchmark(config, (size, size), train_batch_size, iterations)
    result["train_ms"] = train["step_ms"]
    return result


def _child(setting: str, config: str, size: int, batch_size: int, train_batch_size: int,
           iterations: int) -> dict:
    env = {**os.environ, "TF_ENABLE_ONEDNN_OPTS": SETTINGS[setting], "TF_CPP_MIN_LOG_LEVEL": "3",
           "CUDA_VISIBLE_DEVICES": ""}
    spec = dict(config=config, size=size, batch_size=batch_size,
                train_batch_size=train_batch_size, iterations=iterations)
    args = [sys.executable, "-m", "deeplab.benchmark.kernels", json.dumps(spec)]
    result = subprocess.run(args, capture_output=True, text=True, env=env, timeout=3600)
    if result.returncode != 0:
        raise RuntimeError(f"{setting} child for {config} failed: {result.stderr[-800:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def _best(values: list) -> float | str:
    numbers = [v for v in values if isinstance(v, (int, float))]
    return round(min(numbers), 1) if numbers else values[0]


def kernel_comparison(configs, size: int = 513, batch_size: int = 1,
                      train_batch_size: int = 2, iterations: int = 3, rounds: int = 3,
                      log: Callable[[str], None] = print) -> list[dict]:
    """Per config: forward and train step ms on each kernel set, and their ratios.

    ``portable_over_onednn`` > 1 means the portable kernels are slower.
    """
    rows = []
    for config in configs:
        runs: dict[str, list[dict]] = {setting: [] for setting in SETTINGS}
        for index in range(rounds):
            for setting in SETTINGS:
                log(f"kernels {config} {setting} (round {index + 1}/{rounds})")
                runs[setting].append(_child(setting, config, size, batch_size,
                                            train_batch_size, iterations))
        best = {setting: {key: _best([run[key] for run in results])
                          for key in ("forward_ms", "train_ms")}
                for setting, results in runs.items()}
        native = _best([run.get("forward_native_dilation_ms", "not run")
                        for run in runs["onednn"]])
        row = {"config": config, "size": size, "batch_size": batch_size,
               "train_batch_size": train_batch_size, "rounds": rounds,
               "onednn_active": all(run["onednn"] for run in runs["onednn"]),
               "portable": best["portable"], "onednn": best["onednn"],
               "forward_native_dilation_ms": native}
        for key in ("forward_ms", "train_ms"):
            row[f"{key[:-3]}_portable_over_onednn"] = round(
                best["portable"][key] / best["onednn"][key], 3)
        if isinstance(native, float):
            row["forward_space_to_batch_over_native"] = round(
                best["onednn"]["forward_ms"] / native, 3)
        rows.append(row)
    return rows


if __name__ == "__main__":
    # A child: the JSON of measure()'s arguments in, the JSON of its result out.
    print(json.dumps(measure(**json.loads(sys.argv[1]))))
