"""The README's flag documentation matches the code: every ``--flag`` it names is defined by
one of our binaries, no flag of the original is refused as "not built", and the NAS flags
are refused, naming their backbones, elsewhere."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from deeplab.config import NAS_FLAGS, ModelConfig

REPO = Path(__file__).resolve().parent.parent
README = (REPO / "README.md").read_text()
# Flags of other tools the README shows in their own command lines.
OTHER_TOOLS = {"dir", "tag_set", "signature_def", "input_exprs"}  # saved_model_cli
NOT_BINARIES = {"__init__", "common", "model_flags", "original_flags", "runner"}


def readme_flags(text: str) -> set[str]:
    return set(re.findall(r"(?<![\w-])--([a-z][a-z0-9_]*[a-z0-9])", text))


@pytest.fixture(scope="module")
def defined() -> set[str]:
    binaries = sorted(p.stem for p in (REPO / "deeplab" / "cli").glob("*.py")
                      if p.stem not in NOT_BINARIES)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run([sys.executable, str(REPO / "tests" / "flags_dump.py"), *binaries],
                            capture_output=True, text=True, env=env, timeout=600, cwd=REPO)
    assert result.returncode == 0, result.stderr[-3000:]
    return {name for table in json.loads(result.stdout).values() for name in table}


def test_every_flag_the_readme_names_is_defined(defined):
    named = readme_flags(README)
    assert len(named) > 100  # the parser finds the README's flags at all
    assert not named - defined - OTHER_TOOLS, sorted(named - defined - OTHER_TOOLS)


def test_no_flag_is_refused_as_not_built():
    assert "Not in this release yet" not in README
    assert "not in this release" not in " ".join(
        str(f.metadata.get("flag_help", "")) for f in dataclasses.fields(ModelConfig))


@pytest.mark.parametrize("name", NAS_FLAGS)
def test_a_nas_flag_with_another_backbone_is_refused_with_what_it_belongs_to(name):
    default = ModelConfig.__dataclass_fields__[name].default
    value = (not default) if isinstance(default, bool) else default + 1
    with pytest.raises(ValueError, match=rf"{name}.*belongs to the nas_pnasnet / nas_hnasnet "
                       "backbones, not mobilenet_v2"):
        ModelConfig(**{name: value})
    ModelConfig(model_variant="nas_pnasnet", **{name: value})  # its own backbone takes it


def test_drop_path_keep_prob_needs_a_nas_backbone_and_a_probability(tmp_path):
    from deeplab.training.train_config import TrainConfig

    with pytest.raises(ValueError, match="--drop_path_keep_prob: drops paths of the "
                       "nas_pnasnet / nas_hnasnet cells; xception_65 has none"):
        TrainConfig(ModelConfig(model_variant="xception_65"), "d", "l", drop_path_keep_prob=0.7)
    with pytest.raises(ValueError, match=r"must be in \(0, 1\], got 0.0"):
        TrainConfig(ModelConfig(model_variant="nas_hnasnet", output_stride=8), "d", "l",
                    drop_path_keep_prob=0.0)
    TrainConfig(ModelConfig(model_variant="nas_hnasnet", output_stride=8), "d", "l",
                drop_path_keep_prob=0.7)
