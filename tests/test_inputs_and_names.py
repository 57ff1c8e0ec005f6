"""Names that cannot travel wrong, inputs that cannot be skipped or decoded blind (issue 31):
one output per input, class names only with a model of as many classes, every decoded
format sized from its header, every config field and model file named in its error."""

from __future__ import annotations

import io
import json
import struct
from pathlib import Path

import cv2
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image, ImageFile

from deeplab.config import ModelConfig
from deeplab.data import image_io
from deeplab.data.errors import DataError
from deeplab.inference.files import collect_inputs, output_stems, segment_video
from deeplab.model import build_deeplab
from deeplab.runs.store import load_model, save_model

VOC = "pascal_voc_seg"


class ZeroSegmenter:
    """Class 0 everywhere (what the file handling does with labels is under test)."""

    num_classes = 6

    def labels(self, image):
        return np.zeros(image.shape[:2], np.int64)


def write_video(path: Path, value: int, frames: int = 3) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 5.0, (16, 16))
    for _ in range(frames):
        writer.write(np.full((16, 16, 3), value, np.uint8))
    writer.release()
    return path


def encoded(array, fmt, **options) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format=fmt, **options)
    return buffer.getvalue()


def test_two_videos_of_one_name_from_two_folders_get_two_outputs(tmp_path):
    first = write_video(tmp_path / "monday" / "clip.mp4", 40)
    second = write_video(tmp_path / "tuesday" / "clip.mp4", 200)
    photo = tmp_path / "monday" / "Clip.png"  # the same name but for case: also distinct
    photo.write_bytes(encoded(np.zeros((8, 8, 3), np.uint8), "PNG"))
    images, videos = collect_inputs([str(first), str(second), str(photo)])
    stems = output_stems(images + videos)
    assert [stems[p] for p in (photo, first, second)] == ["Clip_png", "clip_mp4", "clip_mp4_2"]
    output = tmp_path / "out"
    output.mkdir()
    for video in videos:
        segment_video(ZeroSegmenter(), video, output, ["background"], "pascal", 0.5,
                      stems[video])
    assert sorted(p.name for p in output.iterdir()) == ["clip_mp4_2_overlay.mp4",
                                                         "clip_mp4_overlay.mp4"]
    for name in ("clip_mp4_overlay.mp4", "clip_mp4_2_overlay.mp4"):
        capture = cv2.VideoCapture(str(output / name))
        assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 3
        capture.release()


def test_a_folder_gives_every_format_the_decoder_reads_and_names_what_it_skips(tmp_path):
    """A WebP in a predict folder was skipped silently (given alone, it was read)."""
    folder = tmp_path / "photos"
    folder.mkdir()
    pixels = np.random.default_rng(0).integers(0, 256, (12, 10, 3), np.uint8)
    for name, fmt in [("a.webp", "WEBP"), ("b.tif", "TIFF"), ("c.png", "PNG")]:
        (folder / name).write_bytes(encoded(pixels, fmt, **({"lossless": True}
                                                              if fmt == "WEBP" else {})))
    (folder / "notes.txt").write_text("not a photo")
    (folder / ".DS_Store").write_bytes(b"\0")
    write_video(folder / "walk.mp4", 90)
    lines = []
    images, videos = collect_inputs([str(folder)], log=lines.append)
    assert [p.name for p in images] == ["a.webp", "b.tif", "c.png"]
    assert [p.name for p in videos] == ["walk.mp4"]
    assert lines == [f"{folder}: 1 file(s) skipped, not images or videos of a format read "
                     "here (notes.txt)"]
    np.testing.assert_array_equal(image_io.read_image_array(str(folder / "a.webp")), pixels)


def _argmax_tflite(num_classes: int) -> bytes:
    """A TFLite model whose ARG_MAX picks among ``num_classes`` channels (a segmentation
    model's output, without the model)."""
    kernel = tf.constant(np.random.default_rng(0).normal(size=(1, 1, 3, num_classes)),
                         tf.float32)

    @tf.function(input_signature=[tf.TensorSpec([1, 8, 8, 3], tf.float32)])
    def segment(image):
        logits = tf.nn.conv2d(image, kernel, 1, "SAME")
        return tf.argmax(logits, -1, output_type=tf.int32)

    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [segment.get_concrete_function()], segment)
    return converter.convert()


def test_class_names_travel_only_with_a_model_of_as_many_classes(tmp_path):
    """convert_to_tflite --dataset=pascal_voc_seg on a 6-class model wrote 21 names into its
    labels file; predict then reported "aeroplane 100.0%". Every place names are kept with
    a model checks the count: the TFLite labels file, the export's choice of names,
    .config.json (and with it a SavedModel's assets and a run's config.json), predict."""
    from deeplab.data.descriptor import get_dataset
    from deeplab.export.tflite import write_tflite
    from deeplab.inference.labels import labels_to_keep, resolve_labels
    from deeplab.inference.segmenters import TFLiteSegmenter

    voc = list(get_dataset(VOC).class_names)
    flatbuffer = _argmax_tflite(6)
    target = tmp_path / "six.tflite"
    message = (f"--dataset {VOC} names 21 classes and the model has 6: class names are kept "
               "only with a model of as many classes; ")
    with pytest.raises(ValueError) as error:
        write_tflite(flatbuffer, target, voc, f"--dataset {VOC}")
    assert str(error.value) == message + "give the data set the model was trained on"
    assert list(tmp_path.iterdir()) == []  # nothing written
    with pytest.raises(ValueError) as error:
        labels_to_keep(None, 6, VOC)
    assert str(error.value) == message + ("give the data set it was trained on, or leave "
                                          "--dataset out to keep the names stored with the "
                                          "model")
    # Another conversion's labels file beside the output is not left to name this model.
    (tmp_path / "six.labels.txt").write_text("\n".join(voc) + "\n")
    write_tflite(flatbuffer, target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["six.tflite"]
    six = [f"c{i}" for i in range(6)]
    write_tflite(flatbuffer, target, six)
    assert (tmp_path / "six.labels.txt").read_text().splitlines() == six
    assert TFLiteSegmenter(target).num_classes == 6  # so predict checks what it reads
    # .config.json: refused at the write; a file edited since is not used, and predict says so.
    model = build_deeplab(num_classes=6, depth_multiplier=0.35)
    with pytest.raises(ValueError, match="^labels names 21 classes and the model has 6"):
        save_model(model, tmp_path / "m.weights.h5", {"class_names": voc, "colormap": "pascal"})
    assert not (tmp_path / "m.weights.h5").exists()
    save_model(model, tmp_path / "m.weights.h5", {"class_names": six, "colormap": "pascal"})
    config = tmp_path / "m.config.json"
    values = json.loads(config.read_text())
    values["labels"]["class_names"] = voc
    config.write_text(json.dumps(values))
    with pytest.raises(ValueError, match=f"^{config} names 21 classes and the model has 6"):
        labels_to_keep(tmp_path / "m.weights.h5", 6)
    chosen = resolve_labels(tmp_path / "m.weights.h5", 6)  # the registered 6-class set's
    assert chosen.names == tuple(get_dataset("synthetic").class_names)
    assert chosen.source == (f"synthetic, chosen by its 6 classes (the 21 names in {config} "
                             "are not for this 6-class model; --dataset sets them)")


def webp_header(width: int, height: int, chunk: bytes = b"VP8L") -> bytes:
    """A WebP of a few bytes that declares ``width`` x ``height`` (no valid pixels)."""
    if chunk == b"VP8L":
        payload = b"\x2f" + struct.pack("<I", (width - 1) | ((height - 1) << 14)) + bytes(8)
    else:  # VP8X: the extended header's canvas size
        payload = (b"\x10\0\0\0" + (width - 1).to_bytes(3, "little")
                   + (height - 1).to_bytes(3, "little"))
    body = chunk + struct.pack("<I", len(payload)) + payload
    return b"RIFF" + struct.pack("<I", 4 + len(body)) + b"WEBP" + body


def test_every_format_the_decoders_read_is_sized_from_its_header_or_refused(monkeypatch):
    """Files (converters, predict): each format read has its size checked before a pixel is
    decoded; formats outside the list (an icon here; EPS would run Ghostscript) are refused.
    Serving's header parser knows WebP (lossy VP8, lossless VP8L, extended VP8X) too."""
    from deeplab.data.exif import encoded_image_size

    pixels = np.random.default_rng(1).integers(0, 256, (37, 53, 3), np.uint8)
    files = {fmt: encoded(pixels, fmt) for fmt in ("PNG", "JPEG", "GIF", "BMP", "TIFF", "PPM")}
    files.update(WEBP=encoded(pixels, "WEBP", lossless=True),
                 WEBP_LOSSY=encoded(pixels, "WEBP", quality=80),
                 WEBP_ALPHA=encoded(np.dstack([pixels, pixels[..., :1]]), "WEBP"))
    for name in ("WEBP", "WEBP_LOSSY", "WEBP_ALPHA"):
        assert list(encoded_image_size(tf.constant(files[name])).numpy()) == [37, 53], name
    assert list(encoded_image_size(tf.constant(webp_header(16383, 16383))).numpy()) == [
        16383, 16383]
    assert list(encoded_image_size(tf.constant(webp_header(70000, 9, b"VP8X"))).numpy()) == [
        9, 70000]

    icon = encoded(pixels[:32, :32], "ICO")

    def decoded(self):
        raise AssertionError(f"{self.format} decoded before its size was checked")

    monkeypatch.setattr(image_io, "MAX_PIXELS", 37 * 53 - 1)
    monkeypatch.setattr(ImageFile.ImageFile, "load", decoded)  # where the plugins decode
    for name, data in files.items():
        with pytest.raises(DataError) as error:
            image_io.open_image(data, f"photo.{name.lower()}")
        assert str(error.value).startswith(f"'photo.{name.lower()}' claims 53x37 pixels, more "
                                           "than 1960"), name
    with pytest.raises(DataError) as error:
        image_io.open_image(icon, "favicon.ico")
    assert str(error.value) == ("'favicon.ico' is corrupt or not an image in a format read "
                                "here (PNG, JPEG, GIF, BMP, TIFF, PPM/PGM/PBM or WebP); "
                                "convert, replace or remove the file")


@pytest.mark.parametrize("fields, message", [
    ({"num_classes": "6"}, "ModelConfig.num_classes: must be an int, got '6' (str)."),
    ({"depth_multiplier": "0.5"},
     "ModelConfig.depth_multiplier: must be a number, got '0.5' (str)."),
    ({"atrous_rates": 6},
     "ModelConfig.atrous_rates: must be a tuple of ints or 'auto' or None, got 6 (int)."),
    ({"output_stride": 16.0}, "ModelConfig.output_stride: must be an int or None, got 16.0 "
                              "(float)."),
    ({"fine_tune_batch_norm": "no"},
     "ModelConfig.fine_tune_batch_norm: must be True or False, got 'no' (str)."),
])
def test_every_config_field_is_checked_against_its_type_and_named(fields, message):
    with pytest.raises(ValueError) as error:
        build_deeplab(**fields)
    assert str(error.value) == message


def test_train_config_fields_are_named_and_a_path_is_kept_as_its_string():
    from deeplab.training.train_config import TrainConfig

    model = ModelConfig(num_classes=6, crop_size=33, decoder_output_stride=4)  # shorthands
    assert (model.crop_size, model.decoder_output_stride) == ((33, 33), (4,))
    with pytest.raises(ValueError) as error:
        TrainConfig(model, "data", "train", train_batch_size="8")
    assert str(error.value) == "TrainConfig.train_batch_size: must be an int, got '8' (str)."
    config = TrainConfig(model, Path("data"), Path("runs") / "a")
    assert (config.dataset_dir, config.train_logdir) == ("data", "runs/a")


def test_a_damaged_or_edited_model_file_is_named_in_one_line(tmp_path):
    model = build_deeplab(num_classes=6, depth_multiplier=0.35)
    weights = save_model(model, tmp_path / "m.weights.h5")
    good = json.loads((tmp_path / "m.config.json").read_text())

    def pair(name, config_text, data=None):
        path = tmp_path / f"{name}.weights.h5"
        path.write_bytes(weights.read_bytes() if data is None else data)
        (tmp_path / f"{name}.config.json").write_text(config_text)
        return path

    cut = pair("cut", json.dumps(good), weights.read_bytes()[:50000])
    with pytest.raises(ValueError) as error:
        load_model(cut)
    assert str(error.value).startswith(f"{cut} cannot be read (Unable to synchronously open "
                                       "file (truncated file")
    assert str(error.value).endswith("it is truncated or not a .weights.h5 file; copy it "
                                     "again, or write it again (save_model, import_weights)")
    seven = pair("seven", json.dumps({**good, "num_classes": 7}))
    with pytest.raises(ValueError) as error:
        load_model(seven)
    assert str(error.value) == (
        f"{seven} does not hold the weights of the model seven.config.json describes "
        "(logits.semantic/kernel is (1, 1, 256, 6) in the file and (1, 1, 256, 7) for the "
        "config): keep a .weights.h5 with the .config.json written beside it")
    text = pair("text", json.dumps({**good, "num_classes": "6"}))
    with pytest.raises(ValueError) as error:
        load_model(text)
    assert str(error.value) == (
        f"{tmp_path / 'text.config.json'}: ModelConfig.num_classes: must be an int, got '6' "
        "(str) (the file was edited, or is not a deeplab-keras model config); restore it")
    broken = pair("broken", json.dumps(good)[:-30])
    with pytest.raises(ValueError) as error:
        load_model(broken)
    assert str(error.value).startswith(f"{tmp_path / 'broken.config.json'} is not valid JSON (")


def test_a_model_file_of_another_kind_is_named(tmp_path):
    from deeplab.inference.segmenters import SavedModelSegmenter, TFLiteSegmenter

    fake = tmp_path / "model.tflite"
    fake.write_bytes(b"<html>not found</html>" * 4)
    with pytest.raises(ValueError) as error:
        TFLiteSegmenter(fake)
    assert str(error.value).startswith(f"{fake} is not a TFLite model this runtime can load (")
    assert str(error.value).endswith("give a .tflite file written by convert_to_tflite or the "
                                     "original's release")

    class Classifier(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32)])
        def classify(self, x):
            return {"scores": tf.nn.softmax(x)}

    module = Classifier()
    tf.saved_model.save(module, str(tmp_path / "other"),
                        signatures={"serving_default": module.classify})
    with pytest.raises(ValueError) as error:
        SavedModelSegmenter(tmp_path / "other")
    assert str(error.value) == (
        f"{tmp_path / 'other'} is a SavedModel of another kind: it has no serving_default "
        "signature with a semantic_predictions output; give an export of export_model (or a "
        ".weights.h5, a training directory, a .tflite)")
