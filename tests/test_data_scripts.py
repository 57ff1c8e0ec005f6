"""The datasets/ scripts: flags to arguments, and one clear error line instead of a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from data_test_utils import rgb, save

REPO = Path(__file__).resolve().parent.parent


def run_script(name, *args):
    return subprocess.run([sys.executable, str(REPO / "datasets" / name), *args],
                          capture_output=True, text=True, timeout=120, cwd=REPO)


def test_make_synthetic_data_script(tmp_path):
    result = run_script("make_synthetic_data.py", f"--output_dir={tmp_path}", "--train_size=6",
                        "--val_size=2", "--height=16", "--width=16", "--num_shards=2",
                        "--num_workers=1")
    assert result.returncode == 0, result.stderr
    assert sorted(os.listdir(tmp_path)) == [
        "dataset.json", "train-00000-of-00002.tfrecord", "train-00001-of-00002.tfrecord",
        "val-00000-of-00002.tfrecord", "val-00001-of-00002.tfrecord"]
    assert "train: 6/6 examples" in result.stderr


def test_bad_input_prints_one_error_line(tmp_path):
    save(rgb(4, 5), tmp_path / "images" / "a.png")
    save(rgb(4, 5, seed=1), tmp_path / "masks" / "a.png")
    result = run_script("build_image_folder_data.py", f"--image_folder={tmp_path / 'images'}",
                        f"--mask_folder={tmp_path / 'masks'}", "--num_classes=2",
                        f"--output_dir={tmp_path / 'rec'}", "--num_workers=1", "--val_fraction=0")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "RGB colour mask" in errors[0] and "a.png" in errors[0]
