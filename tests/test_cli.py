"""The binaries: thin entry points into deeplab/cli, --help shows their flags, aliases."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
ENTRY_POINTS = sorted(p for folder in ("datasets", "export", "scripts")
                      for p in (REPO / folder).glob("*.py"))


@pytest.mark.parametrize("path", ENTRY_POINTS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_entry_points_are_thin_and_their_binary_has_run(path):
    code = [line for line in path.read_text().splitlines()
            if line.strip() and not line.startswith(('"""', "Thin entry point"))]
    assert code[-3:] == [f"from deeplab.cli.{path.stem} import run",
                         'if __name__ == "__main__":', "    run()"]
    # Not imported: every binary defines its flags at import, once per process.
    assert "\ndef run():\n" in (REPO / "deeplab" / "cli" / f"{path.stem}.py").read_text()


@pytest.mark.parametrize("script, expected", [
    ("export/export_model.py", ["--checkpoint_path", "--checkpoint_dir: Alias for "
                                "--checkpoint_path", "--inference_scales", "--output_stride"]),
    ("datasets/make_synthetic_data.py", ["--num_workers", "--[no]overwrite", "--output_dir"]),
])
def test_help_lists_the_binary_s_flags(script, expected):
    result = subprocess.run([sys.executable, str(REPO / script), "--help"], capture_output=True,
                            text=True, env=ENV, timeout=300, cwd=REPO)
    assert "Traceback" not in result.stderr, result.stderr[-2000:]  # absl exits 1 after help
    for text in expected:
        assert text in result.stdout
    assert "Thin entry point" not in result.stdout  # the binary's own docstring is shown
