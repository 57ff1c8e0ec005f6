"""Forward latency and throughput of a model: eager, tf.function, XLA; float32 or bfloat16."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np

from deeplab.benchmark.timing import time_call

MODES = ("eager", "function", "xla")
DTYPES = ("float32", "mixed_bfloat16")
# Configs the benchmark knows by name (ModelConfig fields).
PRESETS: dict[str, dict] = {
    # The original's MobileNetV2 DeepLabv3 (image pooling + 1x1 head), as its TFLite files.
    "mobilenet_v2": dict(model_variant="mobilenet_v2"),
    # DeepLabv3+ Xception-65, OS 16, separable ASPP (6, 12, 18), stride-4 decoder: 54.04 B.
    "xception_65_v3plus": dict(model_variant="xception_65", atrous_rates=(6, 12, 18),
                               decoder_output_stride=(4,)),
    # DeepLabv3+ ResNet-50 at OS 16: the backbone family of the keras-hub peer.
    "resnet_v1_50_v3plus": dict(model_variant="resnet_v1_50", atrous_rates=(6, 12, 18),
                                decoder_output_stride=(4,)),
}


@contextlib.contextmanager
def dtype_policy(dtype: str) -> Iterator[None]:
    """Builds models under a Keras dtype policy (any Keras policy name), restoring the
    previous one afterwards."""
    import keras

    previous = keras.mixed_precision.global_policy().name
    keras.mixed_precision.set_global_policy(dtype)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def build_preset(name: str, dtype: str = "float32"):
    """A DeepLab model of a :data:`PRESETS` config under ``dtype``."""
    from deeplab.model import build_deeplab

    if name not in PRESETS:
        raise ValueError(f"unknown config {name!r}; choose from {sorted(PRESETS)}.")
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {DTYPES}, got {dtype!r}.")
    with dtype_policy(dtype):
        return build_deeplab(**PRESETS[name])


def runner(model, mode: str):
    """A callable ``images -> logits`` running ``model`` in ``mode``."""
    import tensorflow as tf

    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}.")

    def forward(images):
        return model(images, training=False)

    if mode == "eager":
        return forward
    return tf.function(forward, jit_compile=mode == "xla")


def forward_benchmark(model, madds: int, size, mode: str, batch_size: int = 1,
                      iterations: int = 5) -> dict:
    """Latency, images/s and achieved GFLOP/s (2·MAdds per image) of one forward mode.

    ``gflops`` is from the median call, ``best_gflops`` from the fastest.
    """
    import tensorflow as tf

    rng = np.random.default_rng(0)
    images = tf.constant(rng.uniform(0, 255, (batch_size, *size, 3)).astype(np.float32))
    run = runner(model, mode)
    timing = time_call(lambda: run(images).numpy(), iterations)
    return {
        "mode": mode,
        "batch_size": batch_size,
        "first_call_s": round(timing.first_s, 3),
        "latency_ms": round(1000 * timing.median_s, 1),
        "best_latency_ms": round(1000 * timing.min_s, 1),
        "images_per_s": round(batch_size / timing.median_s, 3),
        "gflops": round(2 * madds * batch_size / timing.median_s / 1e9, 1),
        "best_gflops": round(2 * madds * batch_size / timing.min_s / 1e9, 1),
    }
