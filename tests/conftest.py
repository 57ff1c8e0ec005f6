"""Shared fixtures: the reference-artifact directory, Keras state hygiene, the data set and
training run shared by the workers; the suite's ordering and time report (suite_budget)."""

from __future__ import annotations

import os
from pathlib import Path

import keras
import pytest
from shared_runs import build_once, tiny_config
from suite_budget import pytest_collection_modifyitems, pytest_terminal_summary  # noqa: F401

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_REFERENCE_DIR = REPO_ROOT.parent / "shared" / "artifacts"


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    """``$DEEPLAB_REFERENCE_DIR`` or ``../shared/artifacts``; skips when neither exists.

    When the variable is set, a missing directory is an error (CI must see the files).
    """
    configured = os.environ.get("DEEPLAB_REFERENCE_DIR")
    if configured:
        path = Path(configured)
        if not path.is_absolute():
            path = (REPO_ROOT / path).resolve()
        if not path.is_dir():
            pytest.fail(f"DEEPLAB_REFERENCE_DIR={configured} is not a directory.")
        return path
    if DEFAULT_REFERENCE_DIR.is_dir():
        return DEFAULT_REFERENCE_DIR
    pytest.skip("reference artifacts absent: set DEEPLAB_REFERENCE_DIR to ../shared/artifacts")


def reference_file(reference_dir: Path, relative: str) -> Path:
    """A file under the reference dir; fails (not skips) when it is missing."""
    path = reference_dir / relative
    if not path.is_file():
        pytest.fail(f"reference file missing: {path} (see ../shared/artifacts/SOURCES.md)")
    return path


@pytest.fixture(autouse=True)
def _float32_policy():
    """Tests that switch to mixed precision must not leak it into others."""
    yield
    keras.mixed_precision.set_global_policy("float32")


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> Path:
    """A synthetic data set of 32x32 images (16 train, 4 val, 2 shards), built once per
    session for every worker. Read-only: a test that changes it works on a copy."""
    from deeplab.data.synthetic import SyntheticConfig, build_synthetic

    def build(directory: Path) -> None:
        build_synthetic(str(directory), SyntheticConfig(splits_to_sizes={"train": 16, "val": 4},
                                                        height=32, width=32), num_shards=2)

    return build_once(tmp_path_factory, "tiny_data", build)


@pytest.fixture(scope="session")
def tiny_run(tiny_data, tmp_path_factory) -> Path:
    """A training run folder of ``shared_runs.tiny_config`` on ``tiny_data`` (ckpt-2, ckpt-4,
    config.json), trained once per session for every worker. Read-only: a test that resumes,
    damages or extends it works on ``shared_runs.copy_run(tiny_run, tmp_path)``."""
    from deeplab.training.trainer import Trainer

    def build(logdir: Path) -> None:
        lines = []
        Trainer(tiny_config(tiny_data, logdir), log=lines.append).train()
        (logdir.parent / "tiny_run.log").write_text("\n".join(lines) + "\n")

    return build_once(tmp_path_factory, "tiny_run", build)


@pytest.fixture(scope="session")
def tiny_run_log(tiny_run) -> list[str]:
    """The lines the trainer logged while training ``tiny_run``."""
    return (tiny_run.parent / "tiny_run.log").read_text().splitlines()


def run_like_the_original_demo(path: Path, image):
    """What the original's demo did: TF1 GraphDef import, session, feed ImageTensor:0.
    Returns (SemanticPredictions, SemanticProbabilities)."""
    import tensorflow as tf

    graph_def = tf.compat.v1.GraphDef.FromString(Path(path).read_bytes())
    with tf.Graph().as_default() as graph:
        tf.compat.v1.import_graph_def(graph_def, name="")
    with tf.compat.v1.Session(graph=graph) as session:
        return session.run(["SemanticPredictions:0", "SemanticProbabilities:0"],
                           feed_dict={"ImageTensor:0": image})
