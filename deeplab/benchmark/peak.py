"""This machine's matmul peak: GFLOP/s of ``tf.matmul`` on large square matrices."""

from __future__ import annotations

from deeplab.benchmark.timing import time_call


def matmul_peak(dtype: str = "float32", size: int = 4096, iterations: int = 3) -> dict:
    """GFLOP/s of an ``size``² matmul, the better of ``tf.function`` and XLA.

    A matmul of n×n matrices is 2·n³ FLOPs. ``gflops`` is from the fastest call (what the
    cores do when nothing else runs; the model rows' fractions use their fastest call too),
    ``median_gflops`` from the median. bfloat16 uses the CPU's bf16 instructions through
    oneDNN when it has them (AVX512_BF16 / AMX).
    """
    import tensorflow as tf

    a = tf.cast(tf.random.stateless_normal((size, size), seed=(1, 2)), dtype)
    b = tf.cast(tf.random.stateless_normal((size, size), seed=(3, 4)), dtype)
    flops = 2 * size**3
    timings = {}
    for path, jit in (("tf.function", False), ("xla", True)):
        matmul = tf.function(tf.linalg.matmul, jit_compile=jit)
        timings[path] = time_call(lambda m=matmul: float(tf.cast(m(a, b)[0, 0], tf.float32)),
                                  iterations)
    best = min(timings, key=lambda path: timings[path].min_s)
    return {"dtype": dtype, "size": size, "path": best,
            "gflops": round(flops / timings[best].min_s / 1e9, 1),
            "median_gflops": round(flops / timings[best].median_s / 1e9, 1),
            "gflops_by_path": {k: round(flops / t.min_s / 1e9, 1) for k, t in timings.items()}}
