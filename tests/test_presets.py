"""The original's model zoo by name: the preset table against the reference's zoo tables,
tarballs laid out as the original's (written here from our models in the original's
variable names) imported by file name alone, eval printing the zoo's number, and
``deeplab.from_preset``."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
from zoo_server import assert_same_weights, randomize, write_zoo_tarball

import deeplab
from deeplab.data.descriptor import DatasetDescriptor, get_dataset, write_dataset_json
from deeplab.weights.checkpoint_export import export_tf1_checkpoint
from deeplab.weights.presets import (
    PRESETS,
    describe_preset,
    find_preset,
    get_preset,
    zoo_comparison,
)
from deeplab.weights.zoo_import import import_zoo_checkpoint, infer_model_fields

REPO = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}


def zoo_rows(text: str) -> dict[str, list[float]]:
    """{tarball: [reported mIoU, ...]} from the reference's §8 tables."""
    section = text[text.index("## 8. Model zoo"):text.index("## 9.")]
    rows = {}
    for line in section.splitlines():
        names = re.findall(r"\(`([\w.-]+_\d{4}_\d{2}_\d{2})`\)", line)
        if len(names) != 1:
            continue
        cells = [c.strip() for c in line.strip("|").split("|")]
        numbers = [float(v) for cell in cells if re.search(r"%|\((val|test)\)", cell)
                   for v in re.findall(r"(\d+\.\d+)%?", cell.split("(")[0] + " " + cell)]
        rows[names[0]] = numbers
    return rows


def test_every_zoo_tarball_of_the_reference_is_a_preset_with_its_numbers(reference_dir):
    text = (reference_dir.parent / "reference" / "original_release.md").read_text()
    rows = zoo_rows(text)
    by_tarball = {p.tarball: p for p in PRESETS.values()}
    assert len(rows) == 24 and set(rows) == set(by_tarball)
    for tarball, numbers in rows.items():
        preset = by_tarball[tarball]
        for result in preset.results:
            assert result.miou in numbers, (tarball, result.miou, numbers)
        assert bool(preset.results) != preset.backbone_only, tarball
    assert get_preset("deeplabv3_pascal_train_aug_2018_01_04").results[1].miou == 83.58


def test_names_tarballs_folders_and_checkpoints_inside_them_find_the_preset():
    x65 = PRESETS["xception65_coco_voc_trainaug"]
    for given in ("xception65_coco_voc_trainaug", "deeplabv3_pascal_train_aug_2018_01_04",
                  "dl/deeplabv3_pascal_train_aug_2018_01_04.tar.gz",
                  "/data/deeplabv3_pascal_train_aug/model.ckpt",
                  "/data/deeplabv3_pascal_train_aug_2018_01_04/train/model.ckpt-30000"):
        assert find_preset(given) is x65, given
    assert find_preset("/data/my_run/model.ckpt-3") is None
    assert find_preset("deeplabv3_pascal_trainval_2018_01_04.tgz").name == \
        "xception65_coco_voc_trainval"
    with pytest.raises(ValueError, match="not a checkpoint of the original's model zoo; known: "):
        get_preset("resnet")
    for preset in PRESETS.values():  # every config is valid and names a real data set
        config = preset.model_config()
        assert preset.backbone_only or config.num_classes == get_dataset(preset.dataset).num_classes
        assert not preset.results or preset.results[0].output_stride in (
            config.output_stride, 8)


# One preset of every family of the zoo: MobileNetV2 (dm 0.5), MobileNetV3 LR-ASPP, EdgeTPU,
# Xception-65 + ASPP + decoder, Xception-71 + DPC, an ImageNet ResNet-v1-beta backbone.
FAMILIES = ["mobilenetv2_dm05_coco_voc_trainaug", "mobilenetv3_small_cityscapes_trainfine",
            "edgetpu-deeplab-slim", "xception65_cityscapes_trainfine",
            "xception71_dpc_cityscapes_trainfine", "resnet_v1_50_beta_imagenet"]
# The Xception presets (40-45 M parameters: ~15 s each to write and read) in the full tier.
LARGE = {"xception65_cityscapes_trainfine", "xception71_dpc_cityscapes_trainfine"}


@pytest.mark.parametrize("name", [pytest.param(name, marks=pytest.mark.slow) if name in LARGE
                                  else name for name in FAMILIES])
def test_a_zoo_tarball_imports_by_its_file_name_alone(name, tmp_path):
    preset = PRESETS[name]
    source = randomize(deeplab.from_preset(name, load_weights=False))
    big = source.count_params() > 15e6
    path = write_zoo_tarball(source, tmp_path, preset.tarball, compressed=not big)
    imported = import_zoo_checkpoint(path)
    assert imported.preset is preset and imported.model.config == source.config
    if preset.backbone_only:  # the head is new; the whole backbone came from the file
        backbone = {v.path for v in source.backbone.weights}
        for mine, theirs in zip(source.weights, imported.model.weights, strict=True):
            if mine.path in backbone:
                np.testing.assert_array_equal(np.asarray(mine), np.asarray(theirs))
        assert not any(s.startswith("logits") for s in imported.report.matched)
    else:
        assert_same_weights(source, imported.model)
    assert not imported.report.missing_in_model and imported.report.unused_in_file == []
    assert not list(tmp_path.glob("*/model.ckpt*"))  # the unpacked copy is gone


def test_import_weights_binary_needs_only_the_file_and_eval_prints_the_zoo_number(tmp_path,
                                                                               tiny_data):
    name = "mobilenetv2_dm05_coco_voc_trainaug"
    source = randomize(deeplab.from_preset(name, load_weights=False), seed=3)
    tarball = write_zoo_tarball(source, tmp_path, PRESETS[name].tarball)
    output = tmp_path / "voc_dm05.weights.h5"
    result = subprocess.run(
        [sys.executable, "-m", "deeplab.cli.import_weights", f"--input={tarball}",
         f"--output={output}"], capture_output=True, text=True, env=ENV, cwd=REPO, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"model zoo: {name} ({PRESETS[name].tarball}.tar.gz)" in result.stdout
    assert "reported 70.19% (val, output stride 16, scales 1): deeplab-eval " \
        f"--checkpoint_path={output}" in result.stdout
    stored = json.loads(output.with_name("voc_dm05.config.json").read_text())
    assert stored["preset"] == name and stored["labels"]["class_names"][15] == "person"
    assert_same_weights(source, deeplab.load_model(output))

    # eval on a 21-class copy of the tiny records prints the zoo's number beside its own.
    data = tmp_path / "records"
    shutil.copytree(tiny_data, data)
    voc = get_dataset("pascal_voc_seg")
    sizes = json.loads((data / "dataset.json").read_text())["splits"]
    (data / "dataset.json").unlink()
    write_dataset_json(str(data), DatasetDescriptor(
        "voc_like", {s: v["num_examples"] if isinstance(v, dict) else v
                     for s, v in sizes.items()}, 21, 255, voc.class_names, "pascal"))
    result = subprocess.run(
        [sys.executable, "-m", "deeplab.cli.eval", f"--checkpoint_path={output}",
         f"--dataset_dir={data}", f"--eval_logdir={tmp_path / 'eval'}",
         "--eval_crop_size=513,513"],
        capture_output=True, text=True, env=ENV, cwd=REPO, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    measured = re.search(r"^mIoU (\d+\.\d+)%", result.stdout, re.M)
    assert measured, result.stdout[-2000:]
    assert "the model zoo reports 70.19% (val, output stride 16, scales 1) for " \
        f"{name}" in result.stdout


def test_zoo_comparison_matches_settings_and_says_when_they_differ():
    x65 = "xception65_coco_voc_trainaug"
    scales = (0.5, 0.75, 1.0, 1.25, 1.5, 1.75)
    assert zoo_comparison(x65, 8, scales, True, "val") == (
        "the model zoo reports 83.58% (val, output stride 8, scales 0.5,0.75,1,1.25,1.5,1.75, "
        "flipped) for xception65_coco_voc_trainaug")
    other = zoo_comparison(x65, 8, (1.0,), False, "val")
    assert other.startswith("the model zoo reports for xception65_coco_voc_trainaug, with "
                            "other eval settings: 82.20% (val, output stride 16")
    assert zoo_comparison("xception65_coco_voc_trainval", 8, scales, True, "val").endswith(
        "(on test; this eval ran on val)")
    assert zoo_comparison(None, 16, (1.0,), False, "val") is None
    lines = describe_preset(PRESETS[x65], "x.weights.h5").splitlines()
    assert lines[2] == (
        "  reported 83.58% (val, output stride 8, scales 0.5,0.75,1,1.25,1.5,1.75, flipped): "
        "deeplab-eval --checkpoint_path=x.weights.h5 --dataset_dir=<pascal_voc_seg records> "
        "--eval_split=val --eval_crop_size=513,513 --output_stride=8 --atrous_rates=12,24,36 "
        "--eval_scales=0.5,0.75,1,1.25,1.5,1.75 --add_flipped_images")


def test_a_checkpoint_by_another_name_is_read_from_its_variables(tmp_path):
    source = randomize(deeplab.build_deeplab(model_variant="mobilenet_v2", depth_multiplier=0.5,
                                             num_classes=7, decoder_output_stride=(4,),
                                             atrous_rates=()), seed=5)
    prefix = export_tf1_checkpoint(source, tmp_path / "my_run" / "model.ckpt-12")
    fields = infer_model_fields(prefix, {})
    assert fields == {"model_variant": "mobilenet_v2", "depth_multiplier": 0.5,
                      "num_classes": 7, "decoder_output_stride": (4,), "atrous_rates": ()}
    imported = import_zoo_checkpoint(tmp_path / "my_run")
    assert imported.preset is None
    assert_same_weights(source, imported.model)

    aspp = deeplab.build_deeplab(model_variant="mobilenet_v2", depth_multiplier=0.35,
                                 num_classes=3, atrous_rates=(6, 12, 18))
    prefix = export_tf1_checkpoint(aspp, tmp_path / "other" / "model.ckpt")
    assert infer_model_fields(prefix, {"atrous_rates": (6, 12, 18)})["depth_multiplier"] == 0.35
    with pytest.raises(ValueError, match=r"3 atrous ASPP branches \(aspp1..aspp3\) whose rates "
                       "its variables do not hold: give --atrous_rates"):
        infer_model_fields(prefix, {})
    assert infer_model_fields(prefix, {"atrous_rates": (6, 12, 18)})["num_classes"] == 3


def test_a_damaged_tarball_and_a_folder_without_a_checkpoint_say_so(tmp_path):
    bad = tmp_path / "deeplabv3_pascal_train_aug_2018_01_04.tar.gz"
    bad.write_bytes(b"\x1f\x8b" + b"garbage" * 10)
    with pytest.raises(ValueError, match=r"cannot be read \(not a complete gzip/tar archive\): "
                       "it is damaged or incomplete; download it again"):
        import_zoo_checkpoint(bad)
    empty = tmp_path / "deeplabv3_mnv2_pascal_train_aug"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="holds no TF checkpoint"):
        import_zoo_checkpoint(empty)


def test_a_tarball_member_cannot_write_outside_the_unpacked_folder(tmp_path):
    path = tmp_path / "deeplabv3_mnv2_dm05_pascal_trainaug_2018_10_01.tar.gz"
    with tarfile.open(path, "w:gz") as archive:
        member = tarfile.TarInfo("../../escaped/model.ckpt.index")
        member.size = 4
        archive.addfile(member, io.BytesIO(b"evil"))
    with pytest.raises(ValueError, match="member '../../escaped/model.ckpt.index' would be "
                       "unpacked outside its folder; refused"):
        import_zoo_checkpoint(path)
    assert not (tmp_path.parent / "escaped").exists()


def test_from_preset_takes_a_tarball_or_an_imported_file_and_refuses_another_preset(tmp_path):
    name = "mobilenetv3_small_cityscapes_trainfine"
    source = randomize(deeplab.from_preset(name, load_weights=False), seed=7)
    tarball = write_zoo_tarball(source, tmp_path, PRESETS[name].tarball)
    assert_same_weights(source, deeplab.from_preset(name, weights=tarball))
    with pytest.raises(ValueError, match="is the zoo's mobilenetv3_small_cityscapes_trainfine, "
                       "not mobilenetv3_large_cityscapes_trainfine"):
        deeplab.from_preset("mobilenetv3_large_cityscapes_trainfine", weights=tarball)


def test_the_readme_zoo_table_lists_every_preset_with_its_numbers():
    text = (REPO / "README.md").read_text()
    section = text[text.index("### The model zoo by name"):]
    rows = re.findall(r"^\| `([\w.-]+)` \| `([\w.-]+)` \| ([\w-]+) \| (.*) \|$", section, re.M)
    assert [(name, tarball) for name, tarball, _, _ in rows] == [
        (p.name, p.tarball) for p in PRESETS.values()]
    for name, _, dataset, reported in rows:
        preset = PRESETS[name]
        assert dataset == (preset.dataset or "-")
        assert reported == ("; ".join(r.describe() for r in preset.results)
                            or "ImageNet backbone (initial checkpoint)")
