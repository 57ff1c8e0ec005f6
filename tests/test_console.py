"""What a binary prints (issue 36): the project's lines, warnings and errors, without
TensorFlow's start-up chatter, absl's prefixes or a line twice; ``-v`` brings it all back."""

from __future__ import annotations

import collections
import os
import re
import subprocess
import sys

import pytest
from shared_runs import REPO, run_binary

from deeplab import tf_log_level
from deeplab.cli.console import cpp_level_for, requested_verbosity
from deeplab.cli.startup_chatter import LOG_LINE, StartupFilter

# What TensorFlow 2.21 wrote at start-up on a 2-core CPU machine without a GPU driver
# (scripts/quickstart.sh, before this console), with a Python warning, a real error and a
# FATAL line added where such lines can come.
PREINIT = "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
ONEDNN = ("I0000 00:00:1796692024.148336   11009 port.cc:153] oneDNN custom operations are on. "
          "You may see slightly different numerical results due to floating-point round-off "
          "errors from different computation orders. To turn them off, set the environment "
          "variable `TF_ENABLE_ONEDNN_OPTS=0`.\n")
NO_DRIVER = ("I0000 00:00:1796692024.148636   11009 cudart_stub.cc:31] Could not find cuda "
             "drivers on your machine, GPU will not be used.\n")
CPU_GUARD = ("I0000 00:00:1796692294.804342   13578 cpu_feature_guard.cc:227] This TensorFlow "
             "binary is optimized to use available CPU instructions in performance-critical "
             "operations.\nTo enable the following instructions: AVX2 AVX512F FMA, in other "
             "operations, rebuild TensorFlow with the appropriate compiler flags.\n")
PY_WARNING = ("/venv/lib/python3.11/site-packages/keras/src/x.py:12: UserWarning: a warning "
              "of Python's own\n  warnings.warn(\n")
CUDA_FAILED = ("E0000 00:00:1796692025.674431   11009 cuda_platform.cc:52] failed call to "
               "cuInit: INTERNAL: CUDA error: Failed call to cuInit: UNKNOWN ERROR (303)\n")
REAL_ERROR = "E0000 00:00:1796692025.700000   11009 op_kernel.cc:1830] a real error\n"
FATAL = ("F0000 00:00:1796692025.800000   11009 cpu_feature_guard.cc:90] The TensorFlow "
         "library was compiled to use AVX instructions, but these aren't available\n")
STARTUP = (PREINIT + ONEDNN + NO_DRIVER + CPU_GUARD + PY_WARNING + PREINIT + ONEDNN + NO_DRIVER
           + CUDA_FAILED + REAL_ERROR + FATAL)

# The noise: none of it may reach a default console.
NOISE = re.compile(r"InitializeLog|oneDNN custom operations|Could not find cuda drivers|"
                   r"cuInit|CUDA error|INFO:tensorflow|Using MirroredStrategy|"
                   r"Sharding callback|cpu_feature_guard")
# Without the variables a user may not have set: the binaries' own defaults are the claim.
DEFAULT_ENV = {k: v for k, v in os.environ.items()
               if k not in ("TF_CPP_MIN_LOG_LEVEL", "CUDA_VISIBLE_DEVICES")}
DEVICE_LINE = re.compile(r"TensorFlow [\d.]+\S* on (the CPU: \d+ threads, (oneDNN kernels|"
                         r"portable kernels( \(TF_ENABLE_ONEDNN_OPTS=\w+\))?)|\d+ GPUs?: .+)")


# === What the start-up filter keeps (from TensorFlow's own lines) ===
def test_the_default_level_keeps_python_warnings_real_errors_and_fatal_lines():
    """C++ INFO below level 2 goes (the multi-line CPU notice whole), absl's pre-init notice
    goes, the cuInit failure goes because TensorFlow itself found no driver."""
    kept = StartupFilter(min_level=2).keep(STARTUP)
    assert kept == PY_WARNING + REAL_ERROR + FATAL


def test_level_0_shows_everything_and_level_3_only_fatal():
    assert StartupFilter(min_level=0).keep(STARTUP) == STARTUP
    assert StartupFilter(min_level=3).keep(STARTUP) == PY_WARNING + FATAL


def test_a_failure_to_start_cuda_is_shown_where_a_driver_exists():
    """Without TensorFlow's "Could not find cuda drivers" (a driver is there), the cuInit
    failure is a real error; with GPUs hidden on purpose (expect_no_cuda) it is not."""
    text = PREINIT + ONEDNN + CUDA_FAILED
    assert StartupFilter(min_level=2).keep(text) == CUDA_FAILED
    assert StartupFilter(min_level=2, expect_no_cuda=True).keep(text) == ""


def test_the_filter_passes_a_crash_through_as_it_happens(tmp_path):
    """The filter is a separate process: TensorFlow aborting inside it (a CPU without the
    instructions it was built for) still gets its FATAL line out, and the Python warning; the
    chatter stays out. ~0.5 s."""
    script = (
        "import os\n"
        "from deeplab.cli.startup_chatter import filtered_stderr\n"
        "with filtered_stderr(2, False):\n"
        f"    os.write(2, {STARTUP.encode()!r})\n"
        "    os.abort()\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            cwd=REPO, timeout=60)
    assert result.returncode == -6  # SIGABRT
    assert result.stderr == PY_WARNING + REAL_ERROR + FATAL


# === -v / --verbosity, read before absl parses the command line ===
@pytest.mark.parametrize("argv, verbosity", [
    (["--dataset_dir=x", "-v", "1"], 1), (["--verbosity=2"], 2), (["-v=0"], 0),
    (["--v", "-1"], -1), (["--verbosity", "3", "-v", "0"], 0),  # the last one, as absl
    (["--vis_logdir=v", "--v_flag=1"], None), (["--", "-v", "1"], None), (["-v", "x"], None),
    ([], None)])
def test_verbosity_is_read_from_the_command_line(argv, verbosity):
    assert requested_verbosity(argv) == verbosity


def test_verbosity_maps_to_the_cpp_level_as_absl_levels_do():
    """absl: INFO 0, WARNING -1, ERROR -2, FATAL -3; TensorFlow's C++: INFO 0 ... FATAL 3;
    -v 1 (debug) shows all."""
    assert [cpp_level_for(v) for v in (2, 1, 0, -1, -2, -3, -4)] == [0, 0, 0, 1, 2, 3, 3]


def test_the_cpp_level_default_never_replaces_the_users(monkeypatch):
    monkeypatch.setattr(tf_log_level, "_ours", None)
    environ, no_tf = {}, {}
    assert tf_log_level.set_default(environ=environ, modules=no_tf)
    assert environ == {"TF_CPP_MIN_LOG_LEVEL": "2"}
    # A binary's -v replaces this package's default ...
    assert tf_log_level.set_default(0, environ=environ, modules=no_tf)
    assert environ == {"TF_CPP_MIN_LOG_LEVEL": "0"} and tf_log_level.current(environ) == 0
    # ... never the user's, and nothing once TensorFlow read it.
    users = {"TF_CPP_MIN_LOG_LEVEL": "1"}
    assert not tf_log_level.set_default(3, environ=users, modules=no_tf)
    assert users == {"TF_CPP_MIN_LOG_LEVEL": "1"}
    assert not tf_log_level.set_default(environ={}, modules={"tensorflow": object()})
    assert tf_log_level.current({"TF_CPP_MIN_LOG_LEVEL": "x"}) == 0


# === The binaries ===
def _lines(result: subprocess.CompletedProcess) -> list[str]:
    return (result.stdout + result.stderr).splitlines()


def _assert_quiet(lines: list[str]) -> None:
    """No start-up chatter, no absl / C++ prefix, no line twice."""
    assert not [line for line in lines if NOISE.search(line) or LOG_LINE.match(line)], lines
    twice = [line for line, n in collections.Counter(lines).items() if n > 1 and line.strip()]
    assert not twice, lines


def test_a_converter_prints_its_progress_and_nothing_else(tmp_path):
    """TensorFlow imported inside main (after the flags): its chatter is filtered all the
    same; the progress and warning lines come without absl's prefix. One binary run, ~6 s."""
    result = subprocess.run(
        [sys.executable, str(REPO / "datasets" / "make_synthetic_data.py"),
         f"--output_dir={tmp_path}", "--train_size=3", "--val_size=2", "--height=16",
         "--width=16", "--num_shards=1", "--num_workers=1"],
        capture_output=True, text=True, env=DEFAULT_ENV, cwd=REPO, timeout=300)
    assert result.returncode == 0, result.stderr
    lines = _lines(result)
    _assert_quiet(lines)
    # The project's lines only: progress, and its warnings as "warning: ..." (a data set
    # almost all background gets one).
    progress = [line.split(" (")[0] for line in lines if not line.startswith("warning: ")]
    assert progress == ["train: 3/3 examples", "val: 2/2 examples"], lines


@pytest.mark.slow
def test_training_prints_its_lines_and_warnings_and_v_brings_tensorflow_back(tiny_data,
                                                                            tmp_path):
    """Two training runs (2 steps, then 1 more with --verbosity=1): ~60 s on 2 cores, each
    run importing TensorFlow, building and tracing the model."""
    logdir = tmp_path / "train"
    args = [f"--dataset_dir={tiny_data}", f"--train_logdir={logdir}",
            "--model_variant=mobilenet_v2", "--depth_multiplier=0.35",
            "--train_crop_size=33,33", "--train_batch_size=2", "--optimizer=adam",
            "--log_steps=1", "--seed=0", "--batch_norm_decay=0.9"]
    # A learning rate far too high: the loss explodes at step 2 (x4e7), a real warning.
    result = run_binary("deeplab.cli.train", *args, "--training_number_of_steps=2",
                        "--adam_learning_rate=1000", env=DEFAULT_ENV)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = _lines(result)
    _assert_quiet(lines)
    assert DEVICE_LINE.fullmatch(result.stderr.splitlines()[0]), result.stderr
    assert [line.split(" loss")[0] for line in lines if line.startswith("step ")] == [
        "step 1/2", "step 2/2"]
    warnings = [line for line in lines if line.startswith("warning: the loss is ")]
    assert len(warnings) == 1 and "training is diverging" in warnings[0], lines
    assert f"saved {logdir / 'ckpt-2'}" in lines
    assert result.stdout.splitlines()[-1] == "done at step 2"

    verbose = run_binary("deeplab.cli.train", *args, "--training_number_of_steps=3",
                         "--adam_learning_rate=1e-3", "--verbosity=1", env=DEFAULT_ENV)
    assert verbose.returncode == 0, verbose.stderr[-3000:]
    lines = _lines(verbose)
    # TensorFlow's Python INFO, once each (absl's line, not also "INFO:tensorflow:") ...
    strategy = [line for line in lines if "Using MirroredStrategy" in line]
    assert len(strategy) == 1 and LOG_LINE.match(strategy[0]), lines
    assert any("Sharding callback duration" in line for line in lines), lines
    # ... its C++ INFO, and absl's prefix on the project's logger lines.
    assert any(LOG_LINE.match(line) and line.startswith("I") and ".cc:" in line
               for line in lines), lines
    assert any(LOG_LINE.match(line) and DEVICE_LINE.search(line) for line in lines), lines
    assert verbose.stdout.splitlines()[-1] == "done at step 3"
