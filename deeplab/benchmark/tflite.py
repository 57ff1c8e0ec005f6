"""TFLite latency with the LiteRT interpreter (XNNPACK), the original release's files and ours."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from deeplab.benchmark.timing import time_call

REPO_ROOT = Path(__file__).resolve().parents[2]


def reference_tflite_models() -> list[str]:
    """The original release's ``.tflite`` files under ``$DEEPLAB_REFERENCE_DIR/tflite``.

    ``$DEEPLAB_REFERENCE_DIR`` defaults to ``../shared/artifacts`` beside the repository;
    an absent directory gives no files.
    """
    base = Path(os.environ.get("DEEPLAB_REFERENCE_DIR", REPO_ROOT.parent / "shared" / "artifacts"))
    if not base.is_absolute():
        base = REPO_ROOT / base
    directory = base / "tflite"
    return sorted(str(p) for p in directory.glob("*.tflite")) if directory.is_dir() else []


def tflite_latency(model: str | bytes, name: str, threads: int = 2, iterations: int = 10) -> dict:
    """Median invoke latency of a TFLite model (a path or flatbuffer bytes) on random input."""
    from ai_edge_litert.interpreter import Interpreter

    if isinstance(model, bytes):
        interpreter = Interpreter(model_content=model, num_threads=threads)
    else:
        interpreter = Interpreter(model_path=model, num_threads=threads)
    interpreter.allocate_tensors()
    detail = interpreter.get_input_details()[0]
    rng = np.random.default_rng(0)
    dtype = np.dtype(detail["dtype"])
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        data = rng.integers(info.min, info.max, detail["shape"], endpoint=True).astype(dtype)
    else:
        data = rng.uniform(-1, 1, detail["shape"]).astype(dtype)
    interpreter.set_tensor(detail["index"], data)
    timing = time_call(interpreter.invoke, iterations)
    output = interpreter.get_output_details()[0]
    return {
        "model": name,
        "input": f"{dtype.name} {[int(d) for d in detail['shape']]}",
        "output": f"{np.dtype(output['dtype']).name} {[int(d) for d in output['shape']]}",
        "threads": threads,
        "latency_ms": round(1000 * timing.median_s, 1),
    }


def export_ours(preset: str, size: int, quantization: str, calibration_images: int = 4) -> bytes:
    """Our model of ``preset`` converted by ``deeplab.export.tflite`` (random weights).

    Float models output logits (as the original's float GPU file); int8 ones the argmax
    (as the original's quantised files), calibrated on random images.
    """
    from deeplab.benchmark.forward import build_preset
    from deeplab.export.tflite import convert_to_tflite

    model = build_preset(preset)
    rng = np.random.default_rng(0)

    def images():
        return (rng.uniform(0, 255, (size, size, 3)) for _ in range(calibration_images))

    output = "argmax" if quantization == "int8" else "logits"
    return convert_to_tflite(model, (size, size), quantization, output,
                             representative_images=images if quantization == "int8" else None)
