"""The quickstart job end to end (slow): synthetic data → train → eval → int8 export."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}

pytestmark = pytest.mark.slow


def run(*args, timeout=1800):
    result = subprocess.run([sys.executable, *args], capture_output=True, text=True, env=ENV,
                            timeout=timeout, cwd=REPO)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    work = tmp_path_factory.mktemp("quickstart")
    data, train = work / "data", work / "train"
    # As scripts/quickstart.sh: 64x64 images, the flags of scripts/quickstart.flags.
    run("datasets/make_synthetic_data.py", f"--output_dir={data}", "--height=64", "--width=64")
    run("-m", "deeplab.cli.train", "--flagfile=scripts/quickstart.flags", f"--dataset_dir={data}",
        f"--train_logdir={train}")
    return work, data, train


def test_quickstart_reaches_085_miou_on_synthetic_val(trained):
    work, data, train = trained
    out = run("-m", "deeplab.cli.eval", f"--checkpoint_dir={train}", f"--dataset_dir={data}",
              f"--eval_logdir={work / 'eval'}")
    metrics = json.loads((work / "eval" / "metrics.json").read_text())
    print(out.splitlines()[-1])
    assert metrics["miou"] >= 0.85


def test_int8_export_keeps_the_quality(trained):
    """int8 vs float TFLite on the synthetic val set: agreement >= 95 %, mIoU drop <= 1 pt."""
    from ai_edge_litert.interpreter import Interpreter

    from deeplab.data.pipeline import PreprocessConfig, make_dataset
    from deeplab.evaluation.metrics import confusion_matrix, segmentation_metrics
    from deeplab.export.calibration import record_images
    from deeplab.export.tflite import convert_to_tflite
    from deeplab.runs.store import load_model

    work, data, train = trained
    model = load_model(train)
    crop = (65, 65)
    float_model = convert_to_tflite(model, crop, "float", "argmax")
    int8_model = convert_to_tflite(model, crop, "int8", "argmax",
                                   record_images(str(data), "train", crop, 64))
    runners = []
    for flatbuffer in (float_model, int8_model):
        interpreter = Interpreter(model_content=flatbuffer, num_threads=2)
        interpreter.allocate_tensors()
        runners.append(interpreter)
    matrices = [np.zeros((6, 6), np.int64) for _ in runners]
    agreement = []
    batches = make_dataset(str(data), "val", 1, False, PreprocessConfig(crop_size=(65, 65)))
    for batch in batches:
        image = np.asarray(batch["image"]).round()
        label = np.asarray(batch["label"])[0, ..., 0]
        predictions = []
        for interpreter, matrix in zip(runners, matrices):
            detail = interpreter.get_input_details()[0]
            interpreter.set_tensor(detail["index"], image.astype(detail["dtype"]))
            interpreter.invoke()
            prediction = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])[0]
            matrix += confusion_matrix(label, prediction, 6)
            predictions.append(prediction)
        agreement.append((predictions[0] == predictions[1]).mean())
    float_miou, int8_miou = (segmentation_metrics(m)["miou"] for m in matrices)
    print(f"float mIoU {float_miou:.4f}, int8 mIoU {int8_miou:.4f}, "
          f"agreement {np.mean(agreement):.4f}")
    assert np.mean(agreement) >= 0.95
    assert float_miou - int8_miou <= 0.01
