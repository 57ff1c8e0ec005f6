"""This machine's matmul peak: GFLOP/s of ``tf.matmul`` on large square matrices."""

from __future__ import annotations

from deeplab.benchmark.timing import time_call


def matmul_peak(dtype: str = "float32", size: int = 4096, iterations: int = 3) -> dict:
    """Best median GFLOP/s of an ``size``² matmul over ``tf.function`` with and without XLA.

    A matmul of n×n matrices is 2·n³ FLOPs. bfloat16 uses the CPU's bf16 instructions
    through oneDNN when it has them (AVX512_BF16 / AMX).
    """
    import tensorflow as tf

    a = tf.cast(tf.random.stateless_normal((size, size), seed=(1, 2)), dtype)
    b = tf.cast(tf.random.stateless_normal((size, size), seed=(3, 4)), dtype)
    results = {}
    for path, jit in (("tf.function", False), ("xla", True)):
        matmul = tf.function(tf.linalg.matmul, jit_compile=jit)
        timing = time_call(lambda m=matmul: float(tf.cast(m(a, b)[0, 0], tf.float32)), iterations)
        results[path] = 2 * size**3 / timing.median_s / 1e9
    best = max(results, key=results.get)
    return {"dtype": dtype, "size": size, "gflops": round(results[best], 1), "path": best,
            "gflops_by_path": {k: round(v, 1) for k, v in results.items()}}
