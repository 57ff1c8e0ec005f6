"""deeplab-predict on files, folders and videos; colormaps; sliding windows; Cityscapes ids."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import tensorflow as tf

from deeplab.evaluation.evaluator import Evaluator
from deeplab.evaluation.visualization import cityscapes_eval_ids
from deeplab.inference.colormap import (
    bit_get,
    color_image_to_label,
    get_colormap,
    label_to_color_image,
    pascal_colormap,
)
from deeplab.inference.pictures import class_fractions, overlay
from deeplab.model import build_deeplab
from deeplab.runs.store import save_model

REPO = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}


# === Colormaps: the values pinned by the original's get_dataset_colormap_test ===
def test_pascal_colormap_values():
    assert [bit_get(9, i) for i in range(4)] == [1, 0, 0, 1]
    colormap = pascal_colormap()
    assert colormap.shape == (512, 3)
    assert colormap[5].tolist() == [128, 0, 128]
    assert colormap[23].tolist() == [128, 192, 128]
    assert colormap[37].tolist() == [128, 0, 192]
    assert colormap[127].tolist() == [224, 192, 192]
    assert colormap[175].tolist() == [192, 160, 192]
    colors = label_to_color_image(np.array([[0, 16, 16], [52, 7, 52]]))
    assert colors.tolist() == [[[0, 0, 0], [0, 64, 0], [0, 64, 0]],
                               [[0, 64, 192], [128, 128, 128], [0, 64, 192]]]


def test_ade20k_and_mapillary_colormap_values():
    ade = get_colormap("ade20k")
    assert ade.shape == (151, 3)
    assert ade[[1, 3, 10, 20]].tolist() == [[120, 120, 120], [6, 230, 230], [4, 250, 7],
                                            [204, 70, 3]]
    colors = label_to_color_image(np.array([[1, 3], [10, 20]]), "ade20k")
    assert colors.tolist() == [[[120, 120, 120], [6, 230, 230]], [[4, 250, 7], [204, 70, 3]]]
    with pytest.raises(ValueError, match=r"\[0, 151\) for the ade20k colormap"):
        label_to_color_image(np.array([[250]]), "ade20k")
    mapillary = get_colormap("mapillary")
    assert mapillary.shape == (66, 3)
    assert mapillary[3].tolist() == [190, 153, 153]
    assert mapillary[6].tolist() == [102, 102, 156]
    np.testing.assert_array_equal(get_colormap("mapillary_vistas"), mapillary)
    assert [len(get_colormap(n)) for n in ("pascal", "cityscapes", "ade20k", "mapillary")] == [
        512, 256, 151, 66]
    # Every ADE20K class (1..150) is coloured, and only "other" (0) is black.
    assert (ade[1:].sum(axis=1) > 0).all() and ade[0].tolist() == [0, 0, 0]


def test_colormap_errors_and_inverse():
    with pytest.raises(ValueError, match=r"\[0, 512\)"):
        label_to_color_image(np.array([[600]]))
    with pytest.raises(ValueError, match=r"\[H, W\]"):
        label_to_color_image(np.array([1, 2]))
    with pytest.raises(ValueError, match="Unknown colormap"):
        get_colormap("viridis")
    assert get_colormap("cityscapes")[0].tolist() == [128, 64, 128]
    assert get_colormap("cityscapes")[18].tolist() == [119, 11, 32]
    labels = np.array([[0, 1, 15], [255, 20, 3]])
    np.testing.assert_array_equal(color_image_to_label(label_to_color_image(labels)), labels)
    with pytest.raises(ValueError, match=r"Colour \(1, 2, 3\) is not in the pascal colormap"):
        color_image_to_label(np.array([[[1, 2, 3]]]))


def test_cityscapes_train_ids_become_eval_ids():
    ids = cityscapes_eval_ids(np.array([[0, 1, 18], [10, 255, 13]]))
    assert ids.tolist() == [[7, 8, 33], [23, 255, 26]]


def test_overlay_and_class_fractions():
    image = np.full((4, 6, 3), 200, np.uint8)
    labels = np.zeros((4, 6), np.int64)
    labels[:, :3] = 15
    picture = overlay(image, labels, class_names=[f"c{i}" for i in range(21)])
    assert picture.shape[0] == 4 and picture.shape[1] > 6
    # Class 0 is left unpainted; class 15 (person, (192, 128, 128)) blended at alpha 0.5.
    assert picture[0, 5].tolist() == [200, 200, 200]
    assert picture[0, 0].tolist() == [196, 164, 164]
    assert class_fractions(labels, ["bg"] + ["x"] * 14 + ["person"]) == {"bg": 0.5, "person": 0.5}


# === Sliding window ===
def test_sliding_window_covering_the_image_equals_whole_image():
    model = build_deeplab(num_classes=3, depth_multiplier=0.35)
    image = tf.random.uniform((1, 40, 57, 3), 0, 255)
    whole = Evaluator(model).probabilities(image)
    tiled = Evaluator(model, sliding_window=(64, 32)).probabilities(image)
    np.testing.assert_allclose(tiled, whole, atol=1e-6)
    overlapping = Evaluator(model, sliding_window=(33, 16)).probabilities(image)
    assert overlapping.shape == (1, 40, 57, 3)
    np.testing.assert_allclose(tf.reduce_sum(overlapping, -1), 1.0, atol=1e-5)


# === deeplab-predict ===
def write_image(path, rng, size=(60, 80)):
    cv2.imwrite(str(path), rng.integers(0, 256, (*size, 3), dtype=np.uint8))


def test_predict_on_files_folders_and_a_video(tmp_path):
    rng = np.random.default_rng(0)
    model = build_deeplab(num_classes=21, depth_multiplier=0.35)
    weights = save_model(model, tmp_path / "m.weights.h5")
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("a.jpg", "b.png"):
        write_image(folder / name, rng)
    gray = tmp_path / "gray.png"
    cv2.imwrite(str(gray), rng.integers(0, 256, (30, 40), dtype=np.uint8))
    video = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 5, (48, 32))
    for _ in range(3):
        writer.write(rng.integers(0, 256, (32, 48, 3), dtype=np.uint8))
    writer.release()
    out = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, "-m", "deeplab.cli.predict", f"--model={weights}", f"--input={folder}",
         f"--input={gray}", f"--input={video}", f"--output_dir={out}", "--max_size=65"],
        capture_output=True, text=True, env=ENV, timeout=300, cwd=REPO)
    assert result.returncode == 0, result.stderr[-2000:]
    names = {p.name for p in out.iterdir()}
    assert {"a_overlay.png", "a_mask.png", "b_overlay.png", "gray_mask.png",
            "clip_overlay.mp4"} <= names
    mask = cv2.imread(str(out / "a_mask.png"), cv2.IMREAD_UNCHANGED)
    assert mask.shape == (60, 80) and mask.max() < 21
    assert "a.jpg: " in result.stdout and "%" in result.stdout
    frames = cv2.VideoCapture(str(out / "clip_overlay.mp4"))
    assert int(frames.get(cv2.CAP_PROP_FRAME_COUNT)) == 3


def test_predict_with_the_original_float_tflite(tmp_path, reference_dir):
    from conftest import reference_file

    model = reference_file(reference_dir, "tflite/deeplabv3_257_mv_gpu.tflite")
    image = reference_file(reference_dir, "golden_coral/bird.bmp")
    result = subprocess.run(
        [sys.executable, "-m", "deeplab.cli.predict", f"--model={model}", f"--input={image}",
         f"--output_dir={tmp_path}", "--tflite_input_range=-1,1"],
        capture_output=True, text=True, env=ENV, timeout=300, cwd=REPO)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "bird.bmp: background" in result.stdout and "bird " in result.stdout
    assert cv2.imread(str(tmp_path / "bird_mask.png"), cv2.IMREAD_UNCHANGED).shape == (343, 512)


def test_predict_errors_are_one_line(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "deeplab.cli.predict", f"--model={tmp_path / 'x.bin'}",
         f"--input={tmp_path}", f"--output_dir={tmp_path / 'o'}"],
        capture_output=True, text=True, env=ENV, timeout=300, cwd=REPO)
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1].startswith("deeplab-predict: ")
    assert "not a model this tool reads" in result.stderr


def predict(*args):
    return subprocess.run([sys.executable, "-m", "deeplab.cli.predict", *args],
                          capture_output=True, text=True, env=ENV, timeout=300, cwd=REPO)


@pytest.mark.slow
def test_predict_names_the_model_s_classes_and_keeps_every_photo(tmp_path):
    """A 6-class model never gets PASCAL's names: the names and colours stored with it are
    used, --dataset with another class count is refused, photo.jpg and photo.png both keep
    their outputs, and --max_size sizes the canvas of a crop-sized model."""
    from deeplab.inference.segmenters import load_segmenter

    rng = np.random.default_rng(1)
    names = ["background", "disc", "square", "ring", "star", "bar"]
    model = build_deeplab(num_classes=6, depth_multiplier=0.35, crop_size=(65, 65))
    weights = save_model(model, tmp_path / "m.weights.h5",
                         labels={"class_names": names, "colormap": "cityscapes"})
    photos = tmp_path / "photos"
    photos.mkdir()
    write_image(photos / "photo.jpg", rng)
    write_image(photos / "photo.png", rng)
    out = tmp_path / "out"
    result = predict(f"--checkpoint_path={weights}", f"--input={photos}", f"--output_dir={out}",
                     "--max_size=65")
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"class names and colours: {tmp_path / 'm.config.json'}" in result.stdout
    found = [line for line in result.stdout.splitlines() if line.startswith("photo.")]
    assert len(found) == 2 and all(line.split(": ")[1].split()[0] in names for line in found)
    assert "aeroplane" not in result.stdout
    assert {"photo_jpg_overlay.png", "photo_jpg_mask.png", "photo_png_overlay.png",
            "photo_png_mask.png"} <= {p.name for p in out.iterdir()}
    refused = predict(f"--checkpoint_path={weights}", f"--input={photos}",
                      f"--output_dir={out}", "--dataset=pascal_voc_seg")
    assert refused.returncode == 1
    assert refused.stderr.strip().splitlines()[-1] == (
        "deeplab-predict: --dataset pascal_voc_seg has 21 classes, the model 6: give the data "
        "set it was trained on, or leave --dataset out to use the names stored with the model")
    zero = predict(f"--checkpoint_path={weights}", f"--input={photos}", f"--output_dir={out}",
                   "--max_size=0")
    assert zero.returncode != 0 and "--max_size" in zero.stderr and "Traceback" not in zero.stderr
    segmenter = load_segmenter(weights, max_size=129)
    assert segmenter.canvas == (129, 129) and segmenter.model.config.crop_size == (129, 129)


# The process's own peak (VmHWM). Not ru_maxrss: Linux carries the parent's high-water mark
# over the exec of a (v)forked child, so a child of a big pytest worker reports the worker's.
PEAK = ("import atexit, runpy, sys\n"
        "sys.path.insert(0, 'tests')\n"
        "from memory_probe import peak_rss_mb\n"
        "atexit.register(lambda: print('peak MB', peak_rss_mb()))\n"
        "sys.argv = ['deeplab-predict', *sys.argv[1:]]\n"
        "runpy.run_module('deeplab.cli.predict', run_name='__main__')\n")


@pytest.mark.slow
def test_predict_on_a_huge_photo_stays_in_bounded_memory(tmp_path):
    """12000x12000 pixels: the model sees the 513 canvas, and the labels, overlay and legend
    at full size are made in uint8 and in bands of rows. The previous release peaked at
    11.8 GB here (float copies of the whole photo); now ~2.5 GB, a third of it TensorFlow."""
    from test_export import huge_png

    weights = save_model(build_deeplab(num_classes=6, depth_multiplier=0.35),
                         tmp_path / "m.weights.h5")
    photos = tmp_path / "photos"
    photos.mkdir()
    huge_png(photos / "huge.png")
    result = subprocess.run([sys.executable, "-c", PEAK, f"--checkpoint_path={weights}",
                             f"--input={photos}", f"--output_dir={tmp_path / 'out'}"],
                            capture_output=True, text=True, env=ENV, timeout=600, cwd=REPO)
    assert result.returncode == 0, result.stderr[-2000:]
    peak = float(result.stdout.strip().splitlines()[-1].split()[-1])
    assert peak < 3500, peak
    mask = cv2.imread(str(tmp_path / "out" / "huge_mask.png"), cv2.IMREAD_UNCHANGED)
    assert mask.shape == (12000, 12000) and mask.dtype == np.uint8
