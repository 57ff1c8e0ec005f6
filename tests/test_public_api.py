"""The package-level API: the README's example runs as written, ``deeplab.load_model``
opens every format predict takes, and ``import deeplab`` stays free of TensorFlow."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import reference_file

import deeplab
from deeplab.inference.segmenters import SavedModelSegmenter, TFLiteSegmenter

REPO = Path(__file__).resolve().parent.parent


def readme_example() -> str:
    text = (REPO / "README.md").read_text()
    section = text[text.index("## Python API"):]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_the_readme_example_runs_as_written(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    names: dict = {}
    exec(compile(readme_example(), "README.md#python-api", "exec"), names)
    assert tuple(names["logits"].shape) == (1, 65, 97, 6)
    assert (tmp_path / "mine.weights.h5").is_file() and (tmp_path / "mine.config.json").is_file()
    assert names["again"].config == names["config"]


def test_public_names_and_a_clear_error_for_others():
    assert deeplab.__all__ == ["ModelConfig", "build_deeplab", "fit_dataset", "from_preset",
                               "load_model", "save_model"]
    from deeplab.model import build_deeplab

    assert deeplab.build_deeplab is build_deeplab
    with pytest.raises(AttributeError, match="no attribute 'from_presets'"):
        deeplab.from_presets  # noqa: B018


def test_import_deeplab_does_not_import_tensorflow():
    code = "import sys, deeplab; print('tensorflow' in sys.modules, 'keras' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.split() == ["False", "False"]


@pytest.mark.slow
def test_load_model_opens_a_training_run_and_its_saved_model(tiny_data, tiny_run, tmp_path):
    from shared_runs import tiny_config

    from deeplab.export.saved_model import export_saved_model

    model = deeplab.load_model(tiny_run)
    assert model.config == tiny_config(tiny_data, tiny_run).model
    image = np.random.default_rng(1).integers(0, 256, (33, 33, 3), dtype=np.uint8)
    expected = np.asarray(model(image[None]))[0].argmax(-1)
    export_saved_model(model, tmp_path / "export")
    served = deeplab.load_model(tmp_path / "export")
    assert isinstance(served, SavedModelSegmenter)
    np.testing.assert_array_equal(served.labels(image), expected)


def test_load_model_opens_the_originals_tflite_file(reference_dir):
    path = reference_file(reference_dir, "tflite/deeplabv3_mnv2_dm05_pascal_quant.tflite")
    segmenter = deeplab.load_model(path)
    assert isinstance(segmenter, TFLiteSegmenter)
    labels = segmenter.labels(np.full((40, 60, 3), 128, np.uint8))
    assert labels.shape == (40, 60)


def test_load_model_names_what_it_takes(tmp_path):
    with pytest.raises(ValueError, match="a .tflite file, or a SavedModel directory"):
        deeplab.load_model(tmp_path)
