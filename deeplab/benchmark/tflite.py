"""TFLite latency with the LiteRT interpreter (XNNPACK), the original release's files and ours."""

from __future__ import annotations

import dataclasses
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
    interpreter = _interpreter_with_random_input(model, threads)
    timing = time_call(interpreter.invoke, iterations)
    tensor, output = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    return {
        "model": name,
        "input": f"{np.dtype(tensor['dtype']).name} {[int(d) for d in tensor['shape']]}",
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

    output = "argmax" if quantization == "int8" else "logits"
    return _convert_for_timing(build_preset(preset), (size, size), quantization, output,
                               calibration_images)


def _convert_for_timing(model, crop_size, quantization: str, output: str,
                        calibration_images: int) -> bytes:
    """``convert_to_tflite``; int8 calibrates on random images (speed does not depend on
    the quantisation ranges)."""
    from deeplab.export.tflite import convert_to_tflite

    rng = np.random.default_rng(0)

    def images():
        return (rng.uniform(0, 255, (*crop_size, 3)) for _ in range(calibration_images))

    return convert_to_tflite(model, crop_size, quantization, output,
                             representative_images=images if quantization == "int8" else None)


# The TFLite targets: (original file, our quantization, our output, max ratio).
# "qat" is the quantization-aware model (--quantize_delay_step) exported to int8.
SAME_WEIGHTS_GOALS = (
    ("deeplabv3_257_mv_gpu.tflite", "float", "logits", 0.9),
    ("deeplabv3_mnv2_pascal_quant.tflite", "int8", "argmax", 0.8),
    ("deeplabv3_mnv2_pascal_quant.tflite", "qat", "argmax", 0.8),
    ("deeplab_mobilenet_edgetpu_slim_cityscapes_quant.tflite", "int8", "argmax", 0.8),
)


def export_same_weights(path: str, quantization: str, output: str,
                        calibration_images: int = 4) -> bytes:
    """Our export of the network in an original ``.tflite`` file, with its weights.

    The config (input size, backbone, head) is read from the file and the weights are
    imported (:mod:`deeplab.weights.tflite_import`), so both sides run the same network
    and the ratio measures the export alone.
    """
    from deeplab.model import build_deeplab
    from deeplab.weights.tflite_import import import_tflite_weights, infer_model_config

    config = infer_model_config(path)
    if quantization == "qat":
        config = dataclasses.replace(config, quantize_delay_step=0, fine_tune_batch_norm=False)
    model = build_deeplab(config)
    import_tflite_weights(model, path)
    if quantization == "qat":
        # Ranges from training-mode calls on random images (speed does not depend on them).
        rng = np.random.default_rng(0)
        for _ in range(calibration_images):
            model(rng.uniform(0, 255, (1, *config.crop_size, 3)).astype("float32"),
                  training=True)
        return _convert_for_timing(model, config.crop_size, "int8", output, 0)
    return _convert_for_timing(model, config.crop_size, quantization, output,
                               calibration_images)


def _interpreter_with_random_input(model: str | bytes, threads: int):
    """A LiteRT interpreter (default XNNPACK delegate) with a random input set."""
    from deeplab.inference.segmenters import tflite_interpreter

    interpreter = (tflite_interpreter(model_content=model, num_threads=threads)
                   if isinstance(model, bytes) else
                   tflite_interpreter(model, num_threads=threads))
    detail = interpreter.get_input_details()[0]
    rng = np.random.default_rng(0)
    dtype = np.dtype(detail["dtype"])
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        data = rng.integers(info.min, info.max, detail["shape"], endpoint=True).astype(dtype)
    else:
        data = rng.uniform(-1, 1, detail["shape"]).astype(dtype)
    interpreter.set_tensor(detail["index"], data)
    return interpreter


def same_weights_goals(reference_paths, threads: int = 2, rounds: int = 30, log=print) -> dict:
    """Ours over the original's latency, same network and weights, interleaved invokes.

    For each original file of :data:`SAME_WEIGHTS_GOALS` among ``reference_paths``: the
    two interpreters take turns ``rounds`` times and the per-round ratio ours/original is
    summarised (median, range), with the issue's target. Files not given are left out.
    """
    from deeplab.benchmark.paired import interleaved_times, summarise

    by_name = {Path(p).name: str(p) for p in reference_paths}
    goals = {}
    for name, quantization, output, target in SAME_WEIGHTS_GOALS:
        if name not in by_name:
            continue
        log(f"tflite same weights: {name} vs our {quantization} export")
        ours = export_same_weights(by_name[name], quantization, output)
        key = name if quantization != "qat" else f"{name} (QAT)"
        calls = {"original": _interpreter_with_random_input(by_name[name], threads).invoke,
                 "ours": _interpreter_with_random_input(ours, threads).invoke}
        times = interleaved_times(calls, rounds)
        ratio = summarise([t["ours"] / t["original"] for t in times])
        kind = "quantization-aware int8" if quantization == "qat" else quantization
        goals[key] = {
            **ratio, "target": target, "ours": f"{kind} ({output})", "threads": threads,
            "file": name,
            "original_ms": round(1000 * float(np.median([t["original"] for t in times])), 2),
            "ours_ms": round(1000 * float(np.median([t["ours"] for t in times])), 2),
        }
    return goals
