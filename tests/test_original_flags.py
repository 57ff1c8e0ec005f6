"""Every flag of the original's binaries (original_release.md §2) is known to ours, with the
original's type and default unless ``CHANGED_DEFAULTS`` says why not."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from deeplab.cli.original_flags import CHANGED_DEFAULTS, changed_default

REPO = Path(__file__).resolve().parent.parent
COMMON = ("train", "eval", "vis", "export_model")
# §2 sections → our binaries (modules under deeplab.cli).
SECTIONS = {"2.1": COMMON, "2.2": ("train",), "2.3": ("eval",), "2.4": ("vis",),
            "2.5": ("export_model",)}
# §2.6 scripts → our binaries; build_data.py's flags belong to every builder that imports it.
SCRIPTS = {
    "convert_to_tflite.py": ("convert_to_tflite",),
    "datasets/build_data.py": ("build_voc2012_data", "build_cityscapes_data",
                               "build_ade20k_data"),
    "build_voc2012_data.py": ("build_voc2012_data",),
    "build_cityscapes_data.py": ("build_cityscapes_data",),
    "build_ade20k_data.py": ("build_ade20k_data",),
    "remove_gt_colormap.py": ("remove_gt_colormap",),
}
# Out of scope, with the reason: the panoptic COCO-format evaluator is not a DeepLab binary
# of this project (semantic segmentation only).
SKIPPED_SCRIPTS = {"evaluation/eval_coco_format.py"}
NOT_A_DEFAULT = object()


def _section(text: str, number: str) -> str:
    start = re.search(rf"^###+ {re.escape(number)} .*$", text, re.M)
    assert start, f"§{number} not found in original_release.md"
    end = re.search(r"^#{2,3} ", text[start.end():], re.M)
    return text[start.end(): start.end() + end.start() if end else len(text)]


def parse_default(cell: str):
    """The default column of the tables as a Python value (NOT_A_DEFAULT when free text)."""
    cell = cell.strip()
    enum = re.search(r"`'([^']*)'`\s*$", cell)
    if cell.startswith("enum") and enum:
        return enum.group(1)
    cell = cell.replace("**", "").strip().strip("`")
    if cell in ("None", "True", "False"):
        return {"None": None, "True": True, "False": False}[cell]
    if re.fullmatch(r"'[^']*'", cell):
        return cell[1:-1]
    if re.fullmatch(r"\[[-0-9., ]*\]", cell):
        return [float(v) for v in cell[1:-1].split(",") if v.strip()]
    try:
        return float(cell)
    except ValueError:
        return NOT_A_DEFAULT


def original_flags(text: str) -> dict[str, dict[str, tuple[str | None, object]]]:
    """{binary: {flag: (type or None, default)}} from §2's tables and §2.6's lists."""
    table: dict[str, dict] = {}

    def add(binaries, name, kind, default):
        for binary in binaries:
            table.setdefault(binary, {})[name] = (kind, default)

    for number, binaries in SECTIONS.items():
        body = _section(text, number)
        header = next(line for line in body.splitlines() if line.startswith("| Flag"))
        columns = [c.strip() for c in header.strip("|").split("|")]
        for line in body.splitlines():
            if not line.startswith("| `"):
                continue
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            row = dict(zip(columns, cells))
            name = row["Flag"].strip("`")
            kind = row.get("Type")
            if kind is None and row.get("Default", "").startswith("enum"):
                kind = "enum"
            add(binaries, name, kind, parse_default(row.get("Default", "")))
        same_as_eval = re.search(r"The same as eval for (.*?)\. ", body)
        if same_as_eval:
            for name in re.findall(r"`([a-z_]+)`", same_as_eval.group(1)):
                kind, default = table["eval"][name]
                add(binaries, name, kind, default)
    script, binaries = None, ()
    for line in _section(text, "2.6").splitlines():
        top = re.match(r"\* `([\w/]+\.py)`", line)
        if top:
            script = top.group(1)
            assert script in SCRIPTS or script in SKIPPED_SCRIPTS, f"unmapped script {script}"
            binaries = SCRIPTS.get(script, ())
            line = line[top.end():]
        if not binaries:
            continue
        defaults = {name: parse_default(value) for name, value in re.findall(
            r"`([a-z_]+)` \((None|`'[^']*'`)\)", line)}
        defaults.update(re.findall(r"`([a-z_]+)` enum \{[^}]*\}, default `'([^']*)'`", line))
        pairs = re.findall(r"`([a-z_]+)` `([^`]*)`", line)  # `flag` `default`
        defaults.update(pairs)
        values = {value for _, value in pairs}
        for name in re.findall(r"`([a-z_]+)`", line):
            if name not in values:
                add(binaries, name, None, defaults.get(name, NOT_A_DEFAULT))
    return table


@pytest.fixture(scope="module")
def release_text(reference_dir) -> str:
    path = reference_dir.parent / "reference" / "original_release.md"
    if not path.is_file():
        pytest.fail(f"{path} missing: the flag tables come from ../shared/reference/")
    return path.read_text()


@pytest.fixture(scope="module")
def ours(release_text) -> dict:
    binaries = sorted(original_flags(release_text))
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run([sys.executable, str(REPO / "tests" / "flags_dump.py"), *binaries],
                            capture_output=True, text=True, env=env, timeout=600, cwd=REPO)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout)


def test_the_tables_parse_to_every_flag_of_section_2(release_text):
    table = original_flags(release_text)
    # Counted by hand in §2: common.py 33, train.py 48, eval.py 15, vis.py 7 + the 10 it
    # shares with eval, export_model.py 10; build_data.py 2 in each builder.
    assert [len(table[b]) for b in COMMON] == [33 + 48, 33 + 15, 33 + 17, 33 + 10]
    assert [len(table[b]) for b in ("convert_to_tflite", "build_voc2012_data",
                                    "build_cityscapes_data", "build_ade20k_data",
                                    "remove_gt_colormap")] == [5, 2 + 4, 2 + 2, 2 + 5, 3]
    assert table["vis"]["output_stride"] == (None, 16.0)
    assert table["export_model"]["output_stride"] == (None, 8.0)
    assert table["remove_gt_colormap"]["segmentation_format"] == (None, "png")
    assert set(table) == {*COMMON, *(b for bs in SCRIPTS.values() for b in bs)}
    assert parse_default("`'513,513'`") == "513,513"
    assert parse_default("**8**") == 8.0
    assert parse_default("enum {pascal, cityscapes, ade20k}, `'pascal'`") == "pascal"
    assert parse_default("[1.0]") == [1.0]


def _numbers(value):
    """A default as comparable numbers or text: '513,513', ['513,513'] and [513, 513]
    are one value; None and [] too."""
    if value is None or value == []:
        return None
    items = value if isinstance(value, list) else [value]
    flat = [part.strip() for item in items for part in str(item).split(",")]
    try:
        numbers = [float(part) for part in flat]
    except ValueError:
        return value
    if isinstance(value, bool):
        return value
    return numbers


TYPES = {"int": {"int"}, "float": {"float"}, "bool": {"bool"},
         "string": {"string", "string enum"},  # an enum is a string with its choices
         "list": {"multi string", "list"}, "multi_int": {"multi string"},
         "multi_float": {"multi string"}, "multi_integer": {"multi string"},
         "enum": {"string enum"}}


def test_every_original_flag_is_known_with_its_type_and_default(release_text, ours):
    problems = []
    for binary, flags in original_flags(release_text).items():
        known = ours[binary]
        for name, (kind, default) in flags.items():
            if name not in known:
                problems.append(f"{binary}: --{name} unknown")
                continue
            mine = known[name]
            base = (kind or "").split(" ")[0].split("{")[0].strip() or None
            if base is None and isinstance(default, bool):  # tables without a Type column
                base = "bool"
            if base and mine["type"] not in TYPES.get(base, {base}):
                problems.append(f"{binary}: --{name} is {mine['type']}, the original's {kind}")
            if default is NOT_A_DEFAULT:
                continue
            differs = _numbers(mine["default"]) != _numbers(default)
            reason = changed_default(binary, name)
            if differs and not reason:
                problems.append(f"{binary}: --{name} defaults to {mine['default']!r}, the "
                                f"original's {default!r}, and CHANGED_DEFAULTS says nothing")
            if reason and not differs and (binary, name) in CHANGED_DEFAULTS:
                problems.append(f"{binary}: --{name}'s CHANGED_DEFAULTS entry is stale")
    assert not problems, "\n".join(problems)


def test_enum_flags_keep_the_original_choices(ours):
    assert {"max", "avg"} <= set(ours["train"]["merge_method"]["choices"])
    assert {"momentum", "adam"} <= set(ours["train"]["optimizer"]["choices"])
    assert {"poly", "step"} <= set(ours["train"]["learning_policy"]["choices"])
    assert {"pascal", "cityscapes", "ade20k"} <= set(ours["vis"]["colormap_type"]["choices"])


def test_every_changed_default_is_in_the_readme():
    readme = (REPO / "README.md").read_text()
    start = readme.index("- Defaults that differ, and why:")
    block = readme[start:readme.index("\n## ", start)]
    missing = [flag for _, flag in CHANGED_DEFAULTS
               if not re.search(rf"--{flag}(?![a-z_])", block)]
    assert not missing, f"README's 'Defaults that differ' does not name {missing}"
