"""Benchmark harness: timing arithmetic, peak/ratio/goal bookkeeping, TFLite, a tiny full run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
from conftest import reference_file

from deeplab.benchmark import forward, harness, paired, peak, timing
from deeplab.benchmark.goals import goal_values
from deeplab.benchmark.machine import onednn_enabled
from deeplab.benchmark.report import _goal_lines, _tflite_goal_lines, format_report
from deeplab.benchmark.tflite import same_weights_goals, tflite_latency

REPO = Path(__file__).resolve().parent.parent


def test_time_call_separates_first_call_and_takes_the_median(monkeypatch):
    # perf_counter readings: first call 5 s, warm-up (untimed), then calls of 3, 1, 2 s.
    clock = iter([0, 5, 10, 13, 20, 21, 30, 32])
    monkeypatch.setattr(timing.time, "perf_counter", lambda: next(clock))
    calls = []
    result = timing.time_call(lambda: calls.append(1), iterations=3, warmup=1)
    assert len(calls) == 5
    assert result == timing.Timing(first_s=5, median_s=2, min_s=1, iterations=3)


def _fixed_timing(median_s):
    return lambda fn, iterations=5, warmup=1: (fn(), timing.Timing(9.0, median_s, median_s,
                                                                  iterations))[1]


def test_matmul_peak_is_two_n_cubed_over_the_best_median(monkeypatch):
    medians = iter([0.5, 0.25])  # tf.function, then XLA
    monkeypatch.setattr(peak, "time_call", lambda fn, iterations: _fixed_timing(next(medians))(
        fn, iterations))
    result = peak.matmul_peak("float32", size=64, iterations=1)
    assert result["path"] == "xla"
    assert result["gflops"] == round(2 * 64**3 / 0.25 / 1e9, 1)
    assert result["median_gflops"] == result["gflops"]  # the fake timing has min = median
    assert result["gflops_by_path"]["tf.function"] == round(2 * 64**3 / 0.5 / 1e9, 1)


def test_forward_benchmark_arithmetic(monkeypatch):
    monkeypatch.setattr(forward, "time_call", _fixed_timing(0.125))
    model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(2, 1)])
    row = forward.forward_benchmark(model, madds=10**9, size=(8, 8), mode="function",
                                    batch_size=2)
    assert row == {"mode": "function", "batch_size": 2, "first_call_s": 9.0, "latency_ms": 125.0,
                   "best_latency_ms": 125.0, "images_per_s": 16.0, "gflops": 32.0,
                   "best_gflops": 32.0}
    with pytest.raises(ValueError, match="mode must be one of"):
        forward.runner(model, "graph")


def test_fractions_and_ratios():
    def row(config, mode, median_gflops, best_gflops):
        return {"config": config, "size": 513 if config != harness.PEER_NAME else 512,
                "dtype": "float32", "mode": mode, "gflops": median_gflops,
                "best_gflops": best_gflops}

    ours = [row("xception_65_v3plus", "eager", 150.0, 165.0),
            row("xception_65_v3plus", "function", 140.0, 150.0)]
    peers = [row(harness.PEER_NAME, "function", 100.0, 125.0)]
    harness._add_fractions(ours, {"float32": {"gflops": 500.0}})
    assert [(r["fraction_of_peak"], r["median_fraction_of_peak"]) for r in ours] == [
        (0.33, 0.3), (0.3, 0.28)]
    ratios = harness._ratios(ours, peers)
    assert ratios == [{"config": "xception_65_v3plus", "size": 513, "dtype": "float32",
                       "mode": "function", "ratio": 1.2, "median_ratio": 1.4}]


def test_goal_values_per_round():
    # Round 1: ours 2 GFLOP in 0.5 s = 4 GFLOP/s, matmul 8 GFLOP in 1 s: 0.5 of the peak;
    # the peer does 0.5 GMAdds in 0.25 s (2 GMAdds/s) against our 2 GMAdds/s: ratio 1.
    rounds = [{"ours": 0.5, "peer": 0.25, "matmul": 1.0},
              {"ours": 0.25, "peer": 0.25, "matmul": 1.0},
              {"ours": 1.0, "peer": 0.25, "matmul": 0.5}]
    values = goal_values(rounds, madds=10**9, peer_madds=5 * 10**8, matmul_flops=8 * 10**9)
    assert values == {
        "fraction_of_peak": {"median": 0.5, "low": 0.125, "high": 1.0, "rounds": 3,
                             "target": 0.5},
        "vs_keras_hub": {"median": 1.0, "low": 0.5, "high": 2.0, "rounds": 3, "target": 1.2},
    }
    lines = _goal_lines({f"{k}_float32": {**v, "mode": "function"} for k, v in values.items()})
    assert lines[0].endswith("0.500 (median of 3 interleaved rounds, range 0.125-1.000; "
                             "function; target 0.5): met")
    assert lines[1].endswith("1.000 (median of 3 interleaved rounds, range 0.500-2.000; "
                             "function; target 1.2): NOT met")
    assert goal_values(rounds[:1], 10**9, None, 8 * 10**9).keys() == {"fraction_of_peak"}


def test_interleaved_times_alternate_the_calls(monkeypatch):
    clock = iter(range(100))
    monkeypatch.setattr(paired.time, "perf_counter", lambda: next(clock))
    order = []
    times = paired.interleaved_times({"a": lambda: order.append("a"),
                                      "b": lambda: order.append("b")}, rounds=2)
    assert order == ["a", "b"] * 3  # one warm-up round, then two timed ones
    assert times == [{"a": 1, "b": 1}, {"a": 1, "b": 1}]


def test_tflite_latency_of_the_original_float_file(reference_dir):
    path = reference_file(reference_dir, "tflite/deeplabv3_257_mv_gpu.tflite")
    row = tflite_latency(str(path), "original 257", threads=2, iterations=2)
    assert row["input"] == "float32 [1, 257, 257, 3]"
    assert row["output"] == "float32 [1, 257, 257, 21]"
    assert row["latency_ms"] > 0


@pytest.mark.slow
def test_same_weights_tflite_goal_times_both_files_in_turn(reference_dir, monkeypatch):
    path = str(reference_file(reference_dir, "tflite/deeplabv3_257_mv_gpu.tflite"))
    seen = []
    real = paired.interleaved_times

    def recording(calls, rounds):
        times = real(calls, rounds)
        seen.extend(times)
        return times

    monkeypatch.setattr(paired, "interleaved_times", recording)
    goals = same_weights_goals([path, "/elsewhere/unrelated.tflite"], threads=2, rounds=3,
                               log=lambda message: None)
    assert list(goals) == ["deeplabv3_257_mv_gpu.tflite"]  # the int8 file was not given
    goal = goals["deeplabv3_257_mv_gpu.tflite"]
    ratios = sorted(t["ours"] / t["original"] for t in seen)
    assert (goal["rounds"], goal["target"], goal["ours"]) == (3, 0.9, "float (logits)")
    assert goal["median"] == round(ratios[1], 3) and goal["low"] == round(ratios[0], 3)
    (line,) = _tflite_goal_lines(goals)
    assert line.startswith("- our float (logits) export over deeplabv3_257_mv_gpu.tflite: ")
    assert line.endswith(": met" if goal["median"] <= 0.9 else ": NOT met")


@pytest.mark.slow
def test_tiny_run_end_to_end(monkeypatch):
    def no_pipeline(*args, **kwargs):
        raise ImportError("No module named 'deeplab.benchmark.pipeline'")

    monkeypatch.setattr(harness, "_pipeline", no_pipeline)
    settings = harness.Settings(configs=("mobilenet_v2",), sizes=(33,), modes=("function",),
                                dtypes=("float32",), iterations=1, peak_size=128,
                                train_config="mobilenet_v2", train_size=33, train_batch_size=1,
                                train_steps=1, pipeline_batches=1, tflite_ours=(), peers=False,
                                goal_rounds=0, kernel_configs=())
    results = harness.run_benchmark(settings, log=lambda message: None)
    (row,) = results["forward"]
    assert (row["config"], row["size"], row["mode"]) == ("mobilenet_v2", 33, "function")
    peak = results["peaks"]["float32"]
    assert peak["gflops"] == max(results["peak_runs"]["start"]["float32"]["gflops"],
                                 results["peak_runs"]["end"]["float32"]["gflops"])
    assert row["fraction_of_peak"] == round(row["best_gflops"] / peak["gflops"], 3)
    assert results["pipeline"] == {"skipped": "not installed: No module named "
                                              "'deeplab.benchmark.pipeline'"}
    assert results["train"]["images_per_s"] > 0 and results["train"]["peak_rss_mb"] > 0
    if onednn_enabled():
        assert isinstance(results["train"]["peak_tensor_mb"], float)
    else:  # TF keeps no CPU allocator statistics on its portable kernels
        assert results["train"]["peak_tensor_mb"].startswith("unavailable: Allocator stats")
    text = format_report(results)
    assert "Forward (batch 1, 1 timed calls" in text and "mobilenet_v2" in text
    assert "Input pipeline\nskipped: not installed" in text
    assert np.isfinite(results["elapsed_s"])


def test_benchmark_script_rejects_unknown_config():
    result = subprocess.run([sys.executable, str(REPO / "scripts" / "benchmark.py"),
                             "--configs=resnet_9000"], capture_output=True, text=True,
                            timeout=60, cwd=REPO)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith(
        "benchmark: unknown config 'resnet_9000'; choose from")


def test_kernel_comparison_takes_each_setting_s_fastest_round(monkeypatch):
    from deeplab.benchmark import kernels

    runs = iter([
        {"onednn": False, "forward_ms": 12.0, "train_ms": 30.0},
        {"onednn": True, "forward_ms": 10.0, "train_ms": 26.0,
         "forward_native_dilation_ms": 9.0},
        {"onednn": False, "forward_ms": 11.0, "train_ms": 33.0},
        {"onednn": True, "forward_ms": 10.5, "train_ms": 24.0,
         "forward_native_dilation_ms": 8.0},
    ])
    order = []

    def child(setting, *args):
        order.append(setting)
        return next(runs)

    monkeypatch.setattr(kernels, "_child", child)
    (row,) = kernels.kernel_comparison(["mobilenet_v2"], rounds=2, log=lambda line: None)
    assert order == ["portable", "onednn"] * 2  # alternating children
    assert row["portable"] == {"forward_ms": 11.0, "train_ms": 30.0}
    assert row["onednn"] == {"forward_ms": 10.0, "train_ms": 24.0}
    assert (row["forward_portable_over_onednn"], row["train_portable_over_onednn"]) == (1.1, 1.25)
    assert row["forward_native_dilation_ms"] == 8.0
    assert row["forward_space_to_batch_over_native"] == 1.25
    assert row["onednn_active"]
    text = " ".join(format_report_section_for(row).split())  # columns are padded
    assert "| mobilenet_v2 | 513 | 11.0 | 10.0 | 1.1 | 30.0 | 24.0 | 1.25 | 8.0 | 1.25 |" in text


def format_report_section_for(row):
    from deeplab.benchmark.report import _kernel_lines

    return "\n".join(_kernel_lines([row], markdown=True))


@pytest.mark.slow
def test_kernel_child_measures_this_process_kernels():
    from deeplab.benchmark import kernels

    result = kernels.measure("mobilenet_v2", size=33, batch_size=1, train_batch_size=1,
                             iterations=1)
    assert result["onednn"] == onednn_enabled()
    assert result["forward_ms"] > 0 and result["train_ms"] > 0
    # The native dilated form runs only where oneDNN's kernels are on, and is timed only there.
    assert ("forward_native_dilation_ms" in result) == bool(result["onednn"])
