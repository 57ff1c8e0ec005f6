"""The README's flag documentation matches the code: every ``--flag`` it names is defined by
one of our binaries, and its "Not in this release yet" list is exactly the set of flags the
code refuses (so the list cannot go stale again as features land)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from absl import flags

from deeplab.cli.original_flags import define_drop_path_keep_prob, report_original_flags
from deeplab.config import NEEDS_MISSING_VARIANT, ModelConfig

REPO = Path(__file__).resolve().parent.parent
README = (REPO / "README.md").read_text()
# Flags of other tools the README shows in their own command lines.
OTHER_TOOLS = {"dir", "tag_set", "signature_def", "input_exprs"}  # saved_model_cli
NOT_BINARIES = {"__init__", "common", "model_flags", "original_flags", "runner"}


def readme_flags(text: str) -> set[str]:
    return set(re.findall(r"(?<![\w-])--([a-z][a-z0-9_]*[a-z0-9])", text))


def not_in_this_release(text: str) -> set[str]:
    """The flags of the README's "Not in this release yet" bullet (up to its first full
    stop that ends a sentence)."""
    match = re.search(r"^- Not in this release yet(.*?\))\.", text, re.M | re.S)
    assert match, "the README's 'Not in this release yet' bullet is missing"
    return readme_flags(match.group(1))


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


def test_the_not_in_this_release_list_is_what_the_code_refuses():
    refused = set(NEEDS_MISSING_VARIANT) | {"drop_path_keep_prob"}
    assert not_in_this_release(README) == refused


@pytest.mark.parametrize("name", sorted(NEEDS_MISSING_VARIANT))
def test_each_listed_model_flag_is_refused_with_what_it_needs(name):
    default = ModelConfig.__dataclass_fields__[name].default
    value = (not default) if isinstance(default, bool) else default + 1
    with pytest.raises(ValueError, match=rf"{name}.*needs the nas_pnasnet / nas_hnasnet"):
        ModelConfig(**{name: value})


def test_drop_path_keep_prob_is_refused_unless_one():
    values = flags.FlagValues()
    define_drop_path_keep_prob(values)
    values(["prog", "--drop_path_keep_prob=1.0"])
    report_original_flags(values, "deeplab-train", log=lambda line: None)  # the default: fine
    values(["prog", "--drop_path_keep_prob=0.7"])
    with pytest.raises(ValueError, match="drop_path_keep_prob=0.7 needs the nas_pnasnet"):
        report_original_flags(values, "deeplab-train", log=lambda line: None)
