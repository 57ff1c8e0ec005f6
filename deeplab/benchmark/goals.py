"""The issue's targets, measured with interleaved calls (see ``paired.py``).

Xception-65 DeepLabv3+ OS 16 at 513: a forward at >= 50 % of this machine's matmul peak,
and >= 1.2x keras-hub's DeepLabV3 (ResNet-50 + low-level path, 512²) in throughput per
GFLOP, i.e. in achieved GFLOP/s.
"""

from __future__ import annotations

import gc
from collections.abc import Callable

from deeplab.benchmark.forward import build_preset, runner
from deeplab.benchmark.paired import interleaved_times, summarise

GOAL_CONFIG = ("xception_65_v3plus", 513)


def matmul_dtype(dtype: str) -> str:
    """The matmul dtype whose peak a Keras dtype policy is measured against."""
    return "bfloat16" if dtype == "mixed_bfloat16" else "float32"


def goal_values(rounds: list[dict], madds: int, peer_madds: int | None,
                matmul_flops: int) -> dict:
    """Per-round fraction of the matmul peak and ratio to the peer, summarised.

    ``rounds`` holds seconds per call of "ours", "matmul" and, with a peer, "peer".
    """
    fraction = [(2 * madds / r["ours"]) / (matmul_flops / r["matmul"]) for r in rounds]
    values = {"fraction_of_peak": {**summarise(fraction), "target": 0.5}}
    if peer_madds:
        ratio = [(madds / r["ours"]) / (peer_madds / r["peer"]) for r in rounds]
        values["vs_keras_hub"] = {**summarise(ratio), "target": 1.2}
    return values


def paired_goals(dtypes, peaks: dict, rounds: int, peers: bool = True, peer_size: int = 512,
                 log: Callable[[str], None] = print) -> dict:
    """The issue's targets for Xception-65 DeepLabv3+ OS 16 at 513, from interleaved calls.

    Ours, keras-hub's model (when installed) and the peak's matmul take turns in
    tf.function (the fastest mode for both models here), so the ratios see one load.
    """
    import numpy as np
    import tensorflow as tf

    from deeplab.analysis.flops import count_madds

    name, size = GOAL_CONFIG
    goals = {}
    for dtype in dtypes:
        log(f"goals {dtype}: {name}, keras-hub and the matmul, interleaved")
        rng = np.random.default_rng(0)
        models = {"ours": (build_preset(name, dtype), size)}
        if peers:
            try:
                from deeplab.benchmark.peers import keras_hub_deeplab_v3_plus

                models["peer"] = (keras_hub_deeplab_v3_plus(dtype), peer_size)
            except ImportError:
                pass
        calls, madds = {}, {}
        for key, (model, side) in models.items():
            images = tf.constant(rng.uniform(0, 255, (1, side, side, 3)).astype(np.float32))
            run = runner(model, "function")
            calls[key] = lambda run=run, images=images: run(images).numpy()
            madds[key] = count_madds(model, (1, side, side, 3))
        peak = peaks[matmul_dtype(dtype)]
        a = tf.cast(tf.random.stateless_normal((peak["size"],) * 2, seed=(1, 2)), peak["dtype"])
        matmul = tf.function(tf.linalg.matmul, jit_compile=peak["path"] == "xla")
        calls["matmul"] = lambda m=matmul, a=a: float(tf.cast(m(a, a)[0, 0], tf.float32))
        times = interleaved_times(calls, rounds)
        values = goal_values(times, madds["ours"], madds.get("peer"), 2 * peak["size"] ** 3)
        for key, value in values.items():
            goals[f"{key}_{dtype}"] = {**value, "mode": "function"}
        del models, calls
        gc.collect()
    return goals
