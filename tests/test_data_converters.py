"""Each converter on a tiny fabricated copy of its data set's layout."""

from __future__ import annotations

import gzip
import json
import os

import numpy as np
import pytest
import scipy.io
from data_test_utils import blocks_label, read_records, rgb, save

from deeplab.data.converters.ade20k import convert_ade20k
from deeplab.data.converters.cityscapes import convert_cityscapes, id_to_train_id_lut
from deeplab.data.converters.image_folder import convert_image_folder
from deeplab.data.converters.isaid import COLORS, convert_isaid, tile_windows
from deeplab.data.converters.retinal import convert_retinal
from deeplab.data.converters.voc import convert_voc2012, remove_gt_colormap
from deeplab.data.descriptor import get_dataset
from deeplab.data.errors import DataError


def make_voc(root, names_by_split, size=(12, 16)):
    voc = root / "VOCdevkit" / "VOC2012"
    all_names = sorted({n for names in names_by_split.values() for n in names})
    for i, name in enumerate(all_names):
        save(rgb(*size, seed=i), voc / "JPEGImages" / f"{name}.jpg", quality=95)
        save(blocks_label(*size, ids=(0, i % 21, 15)), voc / "SegmentationClass" / f"{name}.png",
             palette=True)
    lists = voc / "ImageSets" / "Segmentation"
    lists.mkdir(parents=True, exist_ok=True)
    for split, names in names_by_split.items():
        (lists / f"{split}.txt").write_text("".join(n + "\n" for n in names))
    return voc


def voc_args(voc, out):
    return dict(image_folder=str(voc / "JPEGImages"),
                semantic_segmentation_folder=str(voc / "SegmentationClass"),
                list_folder=str(voc / "ImageSets" / "Segmentation"), output_dir=str(out))


def test_voc_palette_pngs_are_read_as_indices(tmp_path):
    voc = make_voc(tmp_path, {"train": ["2007_a", "2007_b", "2007_c"], "val": ["2008_d"]})
    desc = convert_voc2012(**voc_args(voc, tmp_path / "rec"), num_shards=4)
    assert desc.splits_to_sizes == {"train": 3, "val": 1}
    assert sorted(os.listdir(tmp_path / "rec")) == [
        "dataset.json", "train-00000-of-00003.tfrecord", "train-00001-of-00003.tfrecord",
        "train-00002-of-00003.tfrecord", "val-00000-of-00001.tfrecord"]
    recs = read_records(tmp_path / "rec", "train")
    assert [r["filename"] for r in recs] == ["2007_a", "2007_b", "2007_c"]
    assert recs[1]["format"] == "jpeg"
    assert recs[1]["encoded"] == (voc / "JPEGImages" / "2007_b.jpg").read_bytes()
    np.testing.assert_array_equal(recs[1]["label"], blocks_label(12, 16, ids=(0, 1, 15)))
    assert get_dataset(str(tmp_path / "rec")).num_classes == 21


def test_voc_train_aug_from_sbd_mat(tmp_path):
    voc = make_voc(tmp_path, {"train": ["a"], "val": ["v"]})
    sbd = tmp_path / "benchmark_RELEASE" / "dataset"
    (sbd / "cls").mkdir(parents=True)
    (sbd / "train.txt").write_text("a\nsbd1\n")
    (sbd / "val.txt").write_text("sbd2\nv\n")
    for k, name in enumerate(["sbd1", "sbd2", "v"]):
        save(rgb(12, 16, seed=10 + k), voc / "JPEGImages" / f"{name}.jpg")
        seg = blocks_label(12, 16, ids=(0, 7), ignore=None)
        scipy.io.savemat(sbd / "cls" / f"{name}.mat", {"GTcls": {
            "Segmentation": seg, "Boundaries": np.zeros(1), "CategoriesPresent": [7]}})
    convert_voc2012(**voc_args(voc, tmp_path / "rec"), sbd_folder=str(sbd), num_shards=1)
    recs = read_records(tmp_path / "rec", "train_aug")
    # (VOC train + SBD train + SBD val) - VOC val; VOC labels win where they exist.
    assert [r["filename"] for r in recs] == ["a", "sbd1", "sbd2"]
    np.testing.assert_array_equal(recs[0]["label"], blocks_label(12, 16, ids=(0, 0, 15)))
    np.testing.assert_array_equal(recs[1]["label"], blocks_label(12, 16, ids=(0, 7),
                                                                 ignore=None))


def test_voc_train_aug_from_segmentation_class_aug(tmp_path):
    voc = make_voc(tmp_path, {"train": ["a"], "val": ["v"]})
    aug = tmp_path / "SegmentationClassAug"
    for k, name in enumerate(["a", "b", "v"]):
        save(rgb(12, 16, seed=20 + k), voc / "JPEGImages" / f"{name}.jpg")
        save(blocks_label(12, 16, ids=(3, 4)), aug / f"{name}.png")
    convert_voc2012(**voc_args(voc, tmp_path / "rec"), splits=["train_aug"],
                    segmentation_class_aug_folder=str(aug), num_shards=1)
    recs = read_records(tmp_path / "rec", "train_aug")
    assert [r["filename"] for r in recs] == ["a", "b"]
    np.testing.assert_array_equal(recs[0]["label"], blocks_label(12, 16, ids=(3, 4)))


def test_voc_missing_and_empty_lists(tmp_path):
    voc = make_voc(tmp_path, {"train": ["a"]})
    with pytest.raises(DataError, match=r"list file '.*val\.txt' does not exist"):
        convert_voc2012(**voc_args(voc, tmp_path / "rec"), splits=["val"])
    (voc / "ImageSets" / "Segmentation" / "val.txt").write_text("\n")
    with pytest.raises(DataError, match=r"list file '.*val\.txt' is empty"):
        convert_voc2012(**voc_args(voc, tmp_path / "rec"))
    (voc / "ImageSets" / "Segmentation" / "val.txt").write_text("zzz\n")
    with pytest.raises(DataError, match=r"image '.*zzz\.jpg' listed in split 'val' is missing"):
        convert_voc2012(**voc_args(voc, tmp_path / "rec"))
    assert not (tmp_path / "rec").exists()


def test_remove_gt_colormap(tmp_path):
    label = blocks_label(5, 6, ids=(0, 5, 20))
    save(label, tmp_path / "gt" / "x.png", palette=True)
    assert remove_gt_colormap(str(tmp_path / "gt"), str(tmp_path / "raw")) == 1
    from PIL import Image

    raw = Image.open(tmp_path / "raw" / "x.png")
    assert raw.mode == "L"
    np.testing.assert_array_equal(np.asarray(raw), label)


def test_cityscapes_train_ids_label_ids_and_unlabeled_test(tmp_path):
    root = tmp_path / "cityscapes"
    ids = np.array([[7, 8, 26, 0], [33, 24, 4, 23]], np.uint8).repeat(3, 0).repeat(3, 1)
    for split, city in (("train", "aachen"), ("val", "lindau"), ("test", "berlin")):
        base = f"{city}_000000_000019"
        save(rgb(6, 12, seed=1), root / "leftImg8bit" / split / city / f"{base}_leftImg8bit.png")
        if split == "train":
            save(id_to_train_id_lut()[ids], root / "gtFine" / split / city /
                 f"{base}_gtFine_labelTrainIds.png")
        elif split == "val":
            save(ids, root / "gtFine" / split / city / f"{base}_gtFine_labelIds.png")
    desc = convert_cityscapes(str(root), str(tmp_path / "rec"))
    assert desc.unlabeled_splits == ("test_fine",)
    expected = np.array([[0, 1, 13, 255], [18, 11, 255, 10]]).repeat(3, 0).repeat(3, 1)
    for split in ("train_fine", "val_fine"):
        (rec,) = read_records(tmp_path / "rec", split)
        assert rec["filename"] == ("aachen" if split == "train_fine" else "lindau") + \
            "_000000_000019"
        np.testing.assert_array_equal(rec["label"], expected)
    (rec,) = read_records(tmp_path / "rec", "test_fine")
    assert rec["label"] is None
    info = json.loads((tmp_path / "rec" / "dataset.json").read_text())
    assert info["splits"]["test_fine"]["labeled"] is False
    assert os.listdir(tmp_path / "rec").count("train_fine-00000-of-00001.tfrecord") == 1


def test_cityscapes_missing_labels_are_named(tmp_path):
    root = tmp_path / "cityscapes"
    for k in range(2):
        save(rgb(4, 4), root / "leftImg8bit" / "train" / "c" / f"c_{k}_leftImg8bit.png")
    save(np.zeros((4, 4), np.uint8), root / "gtFine" / "train" / "c" /
         "c_0_gtFine_labelTrainIds.png")
    with pytest.raises(DataError, match=r"1 labels not found .*c_1_gtFine_labelTrainIds\.png"):
        convert_cityscapes(str(root), str(tmp_path / "rec"), splits=["train_fine"])


def test_ade20k(tmp_path):
    root = tmp_path / "ADEChallengeData2016"
    for split in ("training", "validation"):
        for k in range(2):
            name = f"ADE_{split[:5]}_{k:08d}"
            save(rgb(8, 10, seed=k), root / "images" / split / f"{name}.jpg")
            save(blocks_label(8, 10, ids=(0, 150), ignore=None) if k else np.full(
                (8, 10), 3, np.uint8), root / "annotations" / split / f"{name}.png")
    desc = convert_ade20k(str(root / "images" / "training"), str(root / "annotations" /
                                                                 "training"),
                          str(root / "images" / "validation"),
                          str(root / "annotations" / "validation"), str(tmp_path / "rec"))
    assert (desc.num_classes, desc.ignore_label) == (151, 0)
    recs = read_records(tmp_path / "rec", "val")
    assert [r["filename"] for r in recs] == ["ADE_valid_00000000", "ADE_valid_00000001"]
    np.testing.assert_array_equal(recs[1]["label"], blocks_label(8, 10, ids=(0, 150),
                                                                 ignore=None))


def fov_and_vessels(h=10, w=12):
    vessels = np.zeros((h, w), np.uint8)
    vessels[4:6, :] = 255
    fov = np.full((h, w), 255, np.uint8)
    fov[:, :2] = 0
    expected = (vessels > 0).astype(np.uint8)
    expected[:, :2] = 255
    return vessels, fov, expected


def test_drive_gif_tif_with_fov_mask(tmp_path):
    root = tmp_path / "DRIVE"
    vessels, fov, expected = fov_and_vessels()
    for folder, number in (("training", "21"), ("test", "01")):
        save(rgb(10, 12), root / folder / "images" / f"{number}_{folder}.tif")
        save(fov, root / folder / "mask" / f"{number}_{folder}_mask.gif")
        if folder == "training":
            save(vessels, root / folder / "1st_manual" / f"{number}_manual1.gif")
    desc = convert_retinal("drive", str(root), str(tmp_path / "rec"))
    assert desc.num_classes == 2 and desc.unlabeled_splits == ("test",)
    (rec,) = read_records(tmp_path / "rec", "train")
    assert rec["filename"] == "21_training" and rec["format"] == "png"
    np.testing.assert_array_equal(rec["image"], rgb(10, 12))  # TIFF -> PNG, lossless.
    np.testing.assert_array_equal(rec["label"], expected)
    assert read_records(tmp_path / "rec", "test")[0]["label"] is None


def test_stare_gzipped_ppm_split_10_10(tmp_path):
    root = tmp_path / "STARE"
    vessels, _, _ = fov_and_vessels()
    for k in range(1, 21):
        for folder, name, array in (("stare-images", f"im{k:04d}.ppm", rgb(10, 12, seed=k)),
                                    ("labels-ah", f"im{k:04d}.ah.ppm", vessels)):
            path = save(array, root / folder / name, fmt="PPM")
            path.with_suffix(path.suffix + ".gz").write_bytes(gzip.compress(path.read_bytes()))
            path.unlink()
    convert_retinal("stare", str(root), str(tmp_path / "rec"))
    train, test = read_records(tmp_path / "rec", "train"), read_records(tmp_path / "rec", "test")
    assert [r["filename"] for r in train] == [f"im{k:04d}" for k in range(1, 11)]
    assert [r["filename"] for r in test] == [f"im{k:04d}" for k in range(11, 21)]
    np.testing.assert_array_equal(test[0]["image"], rgb(10, 12, seed=11))
    np.testing.assert_array_equal(test[0]["label"], (vessels > 0).astype(np.uint8))


def test_chase_and_hrf_splits(tmp_path):
    vessels, fov, expected = fov_and_vessels()
    chase = tmp_path / "CHASE_DB1"
    for k in range(1, 15):
        for side in "LR":
            save(rgb(10, 12), chase / f"Image_{k:02d}{side}.jpg")
            save((vessels > 0).astype(np.uint8), chase / f"Image_{k:02d}{side}_1stHO.png")
    convert_retinal("chase_db1", str(chase), str(tmp_path / "chase"))
    assert len(read_records(tmp_path / "chase", "train")) == 20
    test = read_records(tmp_path / "chase", "test")
    assert test[0]["filename"] == "Image_11L" and len(test) == 8
    np.testing.assert_array_equal(test[0]["label"], (vessels > 0).astype(np.uint8))
    hrf = tmp_path / "HRF"
    for group in ("dr", "g", "h"):
        for k in range(1, 16):
            stem = f"{k:02d}_{group}"
            save(rgb(10, 12), hrf / "images" / f"{stem}.JPG" if group == "dr"
                 else hrf / "images" / f"{stem}.jpg", fmt="JPEG")
            save(vessels, hrf / "manual1" / f"{stem}.tif")
            save(fov, hrf / "mask" / f"{stem}_mask.tif")
    convert_retinal("hrf", str(hrf), str(tmp_path / "hrf"), num_workers=2)
    train = read_records(tmp_path / "hrf", "train")
    assert [r["filename"] for r in train][:6] == ["01_dr", "02_dr", "03_dr", "04_dr", "05_dr",
                                                  "01_g"]
    assert len(train) == 15 and len(read_records(tmp_path / "hrf", "test")) == 30
    np.testing.assert_array_equal(train[0]["label"], expected)


def test_isaid_tiles_and_colour_table(tmp_path):
    assert tile_windows(1000, 1500, 896, 384) == [
        (0, 896, 0, 896), (0, 896, 512, 1408), (0, 896, 604, 1500),
        (104, 1000, 0, 896), (104, 1000, 512, 1408), (104, 1000, 604, 1500)]
    assert tile_windows(500, 896, 896, 384) == [(0, 500, 0, 896)]
    root = tmp_path / "iSAID"
    ids = np.zeros((40, 50), np.uint8)
    ids[5:20, 10:30] = 14  # plane
    ids[25:35, 0:10] = 1  # ship
    color = np.array(COLORS, np.uint8)[ids]
    color[0, 0] = (9, 9, 9)  # Not in the table -> ignore.
    save(rgb(40, 50), root / "train" / "images" / "images" / "P0001.png")
    save(color, root / "train" / "Semantic_masks" / "images" / "P0001_instance_color_RGB.png")
    save(rgb(30, 30), root / "test" / "images" / "images" / "P0009.png")
    desc = convert_isaid(str(root), str(tmp_path / "rec"), patch_size=32, overlap=16)
    assert desc.splits_to_sizes == {"train": 6, "test": 1} and desc.num_classes == 16
    recs = read_records(tmp_path / "rec", "train")
    assert [r["filename"] for r in recs] == ["P0001_0_32_0_32", "P0001_0_32_16_48",
                                             "P0001_0_32_18_50", "P0001_8_40_0_32",
                                             "P0001_8_40_16_48", "P0001_8_40_18_50"]
    expected = ids.copy()
    expected[0, 0] = 255
    np.testing.assert_array_equal(recs[5]["label"], expected[8:40, 18:50])
    np.testing.assert_array_equal(recs[5]["image"], rgb(40, 50)[8:40, 18:50])
    np.testing.assert_array_equal(recs[0]["label"], expected[0:32, 0:32])
    assert read_records(tmp_path / "rec", "test")[0]["label"] is None


def test_image_folder_with_colour_table_and_stable_split(tmp_path):
    table = [{"color": [0, 0, 0], "name": "background"}, {"color": [255, 0, 0], "name": "cat"},
             {"color": [0, 255, 0], "name": "dog"}, {"color": [255, 255, 255], "id": 255}]
    (tmp_path / "colors.json").write_text(json.dumps(table))
    ids = blocks_label(6, 9)
    color = np.array([[0, 0, 0], [255, 0, 0], [0, 255, 0]] + [[255, 255, 255]] * 253,
                     np.uint8)[ids]
    for k in range(20):
        save(rgb(6, 9, seed=k), tmp_path / "images" / f"img{k}.jpg")
        save(color, tmp_path / "masks" / f"img{k}.png")
    desc = convert_image_folder(str(tmp_path / "images"), str(tmp_path / "masks"),
                                str(tmp_path / "rec"), color_table_path=str(
                                    tmp_path / "colors.json"), val_fraction=0.3, name="pets")
    assert desc.num_classes == 3 and desc.class_names == ("background", "cat", "dog")
    assert desc.colors == ((0, 0, 0), (255, 0, 0), (0, 255, 0))
    train, val = read_records(tmp_path / "rec", "train"), read_records(tmp_path / "rec", "val")
    assert len(train) + len(val) == 20 and 2 <= len(val) <= 12
    np.testing.assert_array_equal(val[0]["label"], ids)
    # Adding an image never moves the existing ones between splits.
    save(rgb(6, 9), tmp_path / "images" / "new.jpg")
    save(color, tmp_path / "masks" / "new.png")
    convert_image_folder(str(tmp_path / "images"), str(tmp_path / "masks"),
                         str(tmp_path / "rec2"), color_table_path=str(tmp_path / "colors.json"),
                         val_fraction=0.3)
    val2 = {r["filename"] for r in read_records(tmp_path / "rec2", "val")}
    assert {r["filename"] for r in val} <= val2


def test_image_folder_requires_num_classes_and_masks(tmp_path):
    save(rgb(4, 4), tmp_path / "images" / "a.png")
    (tmp_path / "masks").mkdir()
    with pytest.raises(DataError, match="num_classes is required"):
        convert_image_folder(str(tmp_path / "images"), str(tmp_path / "masks"),
                             str(tmp_path / "rec"))
    with pytest.raises(DataError, match=r"1 masks not found in .*'a\.png'"):
        convert_image_folder(str(tmp_path / "images"), str(tmp_path / "masks"),
                             str(tmp_path / "rec"), num_classes=2, val_fraction=0)


def test_sbd_without_scipy_is_a_clear_error(tmp_path, monkeypatch):
    import sys

    from deeplab.data.converters.voc import read_sbd_mat

    monkeypatch.setitem(sys.modules, "scipy.io", None)  # Makes `import scipy.io` fail.
    with pytest.raises(DataError, match=r"x\.mat' needs scipy .*segmentation_class_aug_folder"):
        read_sbd_mat(str(tmp_path / "x.mat"))


def test_package_import_does_not_load_tensorflow():
    import subprocess
    import sys

    code = ("import sys, deeplab.data, deeplab.data.converters.voc, deeplab.data.synthetic; "
            "print('tensorflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"
