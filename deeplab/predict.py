"""Segments image files, a folder or a video with a trained or imported model.

    deeplab-predict --model=exp/voc_mnv2.weights.h5 --input=photo.jpg --output_dir=out
    deeplab-predict --model=deeplabv3_mnv2_pascal_quant.tflite --input=photos/ --output_dir=out
    deeplab-predict --model=exp/export/saved_model --input=clip.mp4 --output_dir=out

For each image it writes ``<name>_overlay.png`` (photo + colour mask + legend),
``<name>_mask.png`` (raw class ids) and prints the classes found with their pixel share.
Images are resized to fit ``--max_size`` (the original demo's 513) and predictions are
brought back to the image's own size.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import cv2
import numpy as np
from absl import app, flags

from deeplab.data.progress import Progress
from deeplab.visualize import class_fractions, overlay, write_png

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".tif", ".tiff", ".gif")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm")

flags.DEFINE_string("model", None, "A .weights.h5 (+ .config.json), a training directory or "
                    "ckpt-N prefix, a .tflite or a SavedModel.")
flags.DEFINE_multi_string("input", None, "Image files, folders of images, or a video.")
flags.DEFINE_string("output_dir", None, "Where results are written.")
flags.DEFINE_string("dataset", "pascal_voc_seg",
                    "Registered dataset name or dataset.json path, for class names and colours.")
flags.DEFINE_integer("max_size", 513, "Longer side of the image fed to the model.")
flags.DEFINE_float("alpha", 0.5, "Opacity of the colour mask in overlays.")
flags.DEFINE_string("tflite_input_range", "0,255",
                    "Value range of a float TFLite input: 0,255 (ours) or -1,1 (original GPU).")
flags.DEFINE_boolean("also_save_color_mask", False, "Also write <name>_color.png.")
FLAGS = flags.FLAGS


def read_rgb(path: Path) -> np.ndarray:
    """RGB uint8 as a viewer shows the file: any mode or bit depth, EXIF orientation applied."""
    from deeplab.data.image_io import read_image_array

    return read_image_array(str(path))


def collect_inputs(inputs: list[str]) -> tuple[list[Path], list[Path]]:
    """(images, videos) from files and folders; unknown paths are an error."""
    images, videos = [], []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            images.extend(sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES))
        elif path.suffix.lower() in VIDEO_SUFFIXES and path.is_file():
            videos.append(path)
        elif path.is_file():
            images.append(path)
        else:
            raise FileNotFoundError(f"--input {item}: no such file or folder")
    return images, videos


def segment_images(segmenter, images, output_dir: Path, class_names, colormap, alpha,
                   color_mask=False, failures: dict[str, str] | None = None
                   ) -> dict[str, dict[str, float]]:
    """Segments each image; an unreadable one is recorded in ``failures`` and skipped."""
    from deeplab.data.errors import DataError

    summaries = {}
    progress = Progress(len(images), "segmenting", interval=10.0, log=print, unit="images")
    for path in images:
        try:
            image = read_rgb(path)
        except DataError as error:
            if failures is None:
                raise
            failures[str(path)] = str(error)
            print(f"{path.name}: skipped, {error}")
            progress.update()
            continue
        labels = segmenter.labels(image)
        write_png(output_dir / f"{path.stem}_overlay.png",
                  overlay(image, labels, colormap, alpha, class_names))
        write_png(output_dir / f"{path.stem}_mask.png", labels.astype(np.uint8))
        if color_mask:
            from deeplab.colormap import label_to_color_image

            write_png(output_dir / f"{path.stem}_color.png",
                      label_to_color_image(labels, colormap))
        summaries[path.name] = class_fractions(labels, class_names)
        found = ", ".join(f"{n} {100 * f:.1f}%" for n, f in summaries[path.name].items())
        print(f"{path.name}: {found}")
        progress.update()
    if images:
        progress.close()
    return summaries


def segment_video(segmenter, path: Path, output_dir: Path, class_names, colormap, alpha):
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise ValueError(f"cannot open video {path}")
    fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
    total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) or 0
    target = output_dir / f"{path.stem}_overlay.mp4"
    temporary = target.with_name(f".tmp-{os.getpid()}-{target.name}")
    writer = None
    progress = Progress(total, f"segmenting {path.name}", interval=10.0, log=print, unit="frames")
    try:
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
            picture = overlay(rgb, segmenter.labels(rgb), colormap, alpha, class_names)
            if writer is None:
                size = (picture.shape[1], picture.shape[0])
                writer = cv2.VideoWriter(str(temporary), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
            writer.write(cv2.cvtColor(picture, cv2.COLOR_RGB2BGR))
            progress.update()
    finally:
        capture.release()
        if writer is not None:
            writer.release()
    if writer is None:
        raise ValueError(f"{path}: no frames could be read")
    os.replace(temporary, target)
    progress.close()
    print(f"{path.name}: wrote {target}")


def main(argv):
    del argv
    from deeplab.data.descriptor import get_dataset
    from deeplab.data.errors import DataError
    from deeplab.segmenter import load_segmenter

    if not FLAGS.model or not FLAGS.input or not FLAGS.output_dir:
        sys.exit("deeplab-predict: --model, --input and --output_dir are required.")
    try:
        dataset = get_dataset(FLAGS.dataset)
        segmenter = load_segmenter(FLAGS.model, FLAGS.max_size, FLAGS.tflite_input_range)
        images, videos = collect_inputs(FLAGS.input)
        if not images and not videos:
            raise ValueError("no images or videos found in --input")
        output_dir = Path(FLAGS.output_dir)
        output_dir.mkdir(parents=True, exist_ok=True)
        names = list(dataset.class_names)
        failures: dict[str, str] = {}
        segment_images(segmenter, images, output_dir, names, dataset.colormap, FLAGS.alpha,
                       FLAGS.also_save_color_mask, failures)
        for video in videos:
            try:
                segment_video(segmenter, video, output_dir, names, dataset.colormap,
                              FLAGS.alpha)
            except ValueError as error:
                failures[str(video)] = str(error)
    except (ValueError, FileNotFoundError, OSError, DataError) as error:
        sys.exit(f"deeplab-predict: {error}")
    print(f"results in {output_dir}")
    if failures:
        done = len(images) + len(videos) - len(failures)
        lines = "\n".join(f"  {path}: {why}" for path, why in failures.items())
        sys.exit(f"deeplab-predict: {len(failures)} of {len(images) + len(videos)} inputs "
                 f"could not be read (the other {done} are written):\n{lines}")


def run():
    """Console-script entry point."""
    app.run(main)


if __name__ == "__main__":
    run()
