"""Runs every benchmark in one process and collects a JSON-ready result."""

from __future__ import annotations

import dataclasses
import gc
import os
import time
from collections.abc import Callable

from deeplab.benchmark.forward import DTYPES, MODES, build_preset, forward_benchmark
from deeplab.benchmark.goals import matmul_dtype, paired_goals
from deeplab.benchmark.machine import describe_machine
from deeplab.benchmark.peak import matmul_peak

PEER_NAME = "keras-hub DeepLabV3 ResNet-50 + low-level (v3+)"


@dataclasses.dataclass
class Settings:
    """What to measure. Sizes are square; every list may be empty to skip that part.

    Attributes:
        configs: :data:`deeplab.benchmark.forward.PRESETS` names for the forward runs.
        sizes, modes, dtypes, batch_size, iterations: the forward grid.
        peak_size: side of the matmul that measures the machine's peak.
        train_config, train_size, train_batch_size, train_steps: the train step (None: skip).
        pipeline_batches: input-pipeline batches (0: skip).
        tflite_models: TFLite files to time (the original release's, and any others).
        tflite_ours: our MobileNetV2 exports to time, "float:257" / "int8:513" style.
        tflite_threads, tflite_iterations: interpreter settings.
        tflite_goal_rounds: interleaved rounds of the same-weights comparison against
            the original's files among ``tflite_models`` (0: skip), see
            :func:`deeplab.benchmark.tflite.same_weights_goals`.
        peers: time keras-hub (when installed) at ``peer_size``.
        goal_rounds: interleaved rounds for the issue's targets (0: skip), see
            :func:`deeplab.benchmark.goals.paired_goals`.
        kernel_configs, kernel_rounds: forward and train step on TensorFlow's portable
            kernels vs oneDNN's, alternating child processes (see
            :func:`deeplab.benchmark.kernels.kernel_comparison`; empty or 0: skip).
    """

    configs: tuple[str, ...] = ("mobilenet_v2", "xception_65_v3plus")
    sizes: tuple[int, ...] = (513,)
    modes: tuple[str, ...] = MODES
    dtypes: tuple[str, ...] = DTYPES
    batch_size: int = 1
    iterations: int = 5
    peak_size: int = 4096
    train_config: str | None = "mobilenet_v2"
    train_size: int = 513
    train_batch_size: int = 2
    train_steps: int = 3
    pipeline_batches: int = 10
    tflite_models: tuple[str, ...] = ()
    tflite_ours: tuple[str, ...] = ("float:257", "int8:513")
    tflite_threads: int = 2
    tflite_iterations: int = 10
    tflite_goal_rounds: int = 30
    peers: bool = True
    peer_size: int = 512
    goal_rounds: int = 7
    kernel_configs: tuple[str, ...] = ("mobilenet_v2", "xception_65_v3plus")
    kernel_rounds: int = 3

    def validate(self) -> None:
        for mode in self.modes:
            if mode not in MODES:
                raise ValueError(f"unknown mode {mode!r}; choose from {MODES}.")
        for dtype in self.dtypes:
            if dtype not in DTYPES:
                raise ValueError(f"unknown dtype {dtype!r}; choose from {DTYPES}.")
        for spec in self.tflite_ours:
            quantization, _, size = spec.partition(":")
            if quantization not in ("float", "float16", "dynamic", "int8") or not size.isdigit():
                raise ValueError(f"tflite_ours entries look like 'float:257' or 'int8:513', "
                                 f"got {spec!r}.")
        if min(self.sizes, default=1) < 1 or self.batch_size < 1 or self.iterations < 1:
            raise ValueError("sizes, batch_size and iterations must be positive.")


def _model_rows(model, config: str, size: int, dtype: str, settings: Settings,
                log) -> list[dict]:
    """One forward row per mode for a built model."""
    from deeplab.analysis.flops import count_madds, count_parameters

    madds = count_madds(model, (1, size, size, 3))
    rows = []
    for mode in settings.modes:
        log(f"forward {config} {size} {dtype} {mode}")
        row = forward_benchmark(model, madds, (size, size), mode, settings.batch_size,
                                settings.iterations)
        row.update(config=config, size=size, dtype=dtype, gmadds=round(madds / 1e9, 3),
                   parameters=count_parameters(model))
        rows.append(row)
    return rows


def _forward_rows(settings: Settings, log) -> list[dict]:
    rows = []
    for name in settings.configs:
        for dtype in settings.dtypes:
            model = build_preset(name, dtype)
            for size in settings.sizes:
                rows += _model_rows(model, name, size, dtype, settings, log)
            del model
            gc.collect()
    return rows


def _peer_rows(settings: Settings, log) -> list[dict]:
    from deeplab.benchmark.peers import keras_hub_deeplab_v3_plus

    rows = []
    for dtype in settings.dtypes:
        model = keras_hub_deeplab_v3_plus(dtype)
        rows += _model_rows(model, PEER_NAME, settings.peer_size, dtype, settings, log)
        del model
        gc.collect()
    return rows


def _add_fractions(rows: list[dict], peaks: dict) -> None:
    """Achieved over peak GFLOP/s: best call against the best matmul, and median against it."""
    for row in rows:
        peak = peaks[matmul_dtype(row["dtype"])]["gflops"]
        row["fraction_of_peak"] = round(row["best_gflops"] / peak, 3)
        row["median_fraction_of_peak"] = round(row["gflops"] / peak, 3)


def _ratios(forward: list[dict], peers: list[dict]) -> list[dict]:
    """Our achieved GFLOP/s (images/s × GFLOP per image) over the peer's, same dtype and mode.

    ``ratio`` compares best calls, ``median_ratio`` medians.
    """
    ratios = []
    for peer in peers:
        for ours in forward:
            if (ours["dtype"], ours["mode"]) == (peer["dtype"], peer["mode"]):
                ratios.append({"config": ours["config"], "size": ours["size"],
                               "dtype": ours["dtype"], "mode": ours["mode"],
                               "ratio": round(ours["best_gflops"] / peer["best_gflops"], 3),
                               "median_ratio": round(ours["gflops"] / peer["gflops"], 3)})
    return ratios


def _optional(name: str, run: Callable[[], object], log):
    """Runs an optional part; a missing dependency or a failure is recorded, not raised."""
    try:
        return run()
    except ImportError as error:
        log(f"{name}: skipped ({error})")
        return {"skipped": f"not installed: {error}"}
    except Exception as error:  # The rest of the run is still worth reporting.
        log(f"{name}: failed ({type(error).__name__}: {error})")
        return {"skipped": f"failed: {type(error).__name__}: {str(error).splitlines()[0]}"}


def run_benchmark(settings: Settings, log: Callable[[str], None] = print) -> dict:
    """Measures everything in ``settings``; returns the JSON-ready results."""
    settings.validate()
    start = time.time()
    results: dict = {"machine": describe_machine(), "settings": dataclasses.asdict(settings)}
    peak_dtypes = sorted({matmul_dtype(d) for d in settings.dtypes} | {"float32"})
    log("matmul peak (start)")
    peaks_start = {d: matmul_peak(d, settings.peak_size) for d in peak_dtypes}
    if settings.train_config:
        from deeplab.benchmark.train_step import train_step_benchmark

        # First, so the resident-memory growth is the train step's, not earlier models'.
        log(f"train step {settings.train_config}")
        results["train"] = train_step_benchmark(
            settings.train_config, (settings.train_size,) * 2, settings.train_batch_size,
            settings.train_steps)
    results["forward"] = _forward_rows(settings, log)
    if settings.peers:
        results["peers"] = _optional("peers", lambda: _peer_rows(settings, log), log)
    # The cores are shared: measure the peak again and keep each dtype's better run, so a
    # busy moment at the start cannot flatter the fractions.
    log("matmul peak (end)")
    peaks_end = {d: matmul_peak(d, settings.peak_size) for d in peak_dtypes}
    results["peaks"] = {d: max(peaks_start[d], peaks_end[d], key=lambda p: p["gflops"])
                        for d in peak_dtypes}
    results["peak_runs"] = {"start": peaks_start, "end": peaks_end}
    _add_fractions(results["forward"], results["peaks"])
    if isinstance(results.get("peers"), list):
        _add_fractions(results["peers"], results["peaks"])
        results["peer_ratios"] = _ratios(results["forward"], results["peers"])
    if settings.goal_rounds:
        results["goals"] = paired_goals(settings.dtypes, results["peaks"], settings.goal_rounds,
                                        settings.peers, settings.peer_size, log)
    if settings.pipeline_batches:
        results["pipeline"] = _optional("pipeline", lambda: _pipeline(settings, log), log)
    results["tflite"] = _tflite_rows(settings, log)
    if settings.tflite_goal_rounds:
        from deeplab.benchmark.tflite import same_weights_goals

        results["tflite_goals"] = _optional("tflite goals", lambda: same_weights_goals(
            settings.tflite_models, settings.tflite_threads, settings.tflite_goal_rounds, log),
            log)
    if settings.kernel_configs and settings.kernel_rounds:
        from deeplab.benchmark.kernels import kernel_comparison

        results["kernels"] = _optional("kernels", lambda: kernel_comparison(
            settings.kernel_configs, settings.train_size, settings.batch_size,
            settings.train_batch_size, settings.iterations, settings.kernel_rounds, log), log)
    results["elapsed_s"] = round(time.time() - start, 1)
    # Other users of the cores distort the figures: the load at both ends says how much.
    results["load_average_at_end"] = [round(v, 2) for v in os.getloadavg()]
    return results


def _pipeline(settings: Settings, log) -> dict:
    from deeplab.benchmark.pipeline import pipeline_throughput

    log("input pipeline")
    batch_size = 4
    images_per_s = pipeline_throughput(num_records=32, batch_size=batch_size,
                                       crop_size=settings.train_size,
                                       num_batches=settings.pipeline_batches, warmup_batches=2)
    return {"images_per_s": round(images_per_s, 2), "batch_size": batch_size,
            "crop_size": settings.train_size, "batches": settings.pipeline_batches,
            "source": "deeplab.benchmark.pipeline.pipeline_throughput (VOC-sized JPEG records)"}


def _tflite_rows(settings: Settings, log) -> list[dict]:
    from deeplab.benchmark.tflite import export_ours, tflite_latency

    rows = []
    for path in settings.tflite_models:
        log(f"tflite {path}")
        row = _optional("tflite", lambda p=path: tflite_latency(
            p, p.rsplit("/", 1)[-1], settings.tflite_threads, settings.tflite_iterations), log)
        rows.append({"model": path, **row} if "skipped" in row else row)
    for spec in settings.tflite_ours:
        quantization, _, size = spec.partition(":")
        name = f"ours: mobilenet_v2 {quantization} {size}"
        log(f"tflite {name}")
        row = _optional("tflite", lambda q=quantization, s=int(size), n=name: tflite_latency(
            export_ours("mobilenet_v2", s, q), n, settings.tflite_threads,
            settings.tflite_iterations), log)
        rows.append({"model": name, **row} if "skipped" in row else row)
    return rows
