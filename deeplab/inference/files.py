"""Segmenting files: photos (any format, EXIF orientation applied), folders and videos."""

from __future__ import annotations

import collections
from pathlib import Path

import cv2
import numpy as np

from deeplab.data.progress import Progress
from deeplab.inference.colormap import label_to_color_image
from deeplab.inference.pictures import class_fractions, overlay, write_png
from deeplab.runs.atomic import atomic_path

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".tif", ".tiff", ".gif")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm")


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


def output_stems(paths: list[Path]) -> dict[Path, str]:
    """The name each input's outputs start with: its stem, or where two inputs share one
    (``photo.jpg`` and ``photo.png``, or two folders' ``a.png``) the stem and extension,
    then a number, so no output is written over another's."""
    stems: dict[Path, str] = {}
    taken: set[str] = set()
    counts = collections.Counter(p.stem for p in paths)
    for path in paths:
        stem = (f"{path.stem}_{path.suffix.lstrip('.')}" if counts[path.stem] > 1
                else path.stem)
        candidate, number = stem, 2
        while candidate in taken:
            candidate, number = f"{stem}_{number}", number + 1
        taken.add(candidate)
        stems[path] = candidate
    return stems


def segment_images(segmenter, images, output_dir: Path, class_names, colormap, alpha,
                   color_mask=False, failures: dict[str, str] | None = None
                   ) -> dict[str, dict[str, float]]:
    """Segments each image; an unreadable one is recorded in ``failures`` and skipped."""
    from deeplab.data.errors import DataError

    summaries = {}
    stems = output_stems(images)
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
        stem = stems[path]
        write_png(output_dir / f"{stem}_overlay.png",
                  overlay(image, labels, colormap, alpha, class_names))
        write_png(output_dir / f"{stem}_mask.png", labels.astype(np.uint8))
        if color_mask:
            write_png(output_dir / f"{stem}_color.png", label_to_color_image(labels, colormap))
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
    progress = Progress(total, f"segmenting {path.name}", interval=10.0, log=print, unit="frames")
    with atomic_path(target) as temporary:
        try:
            _write_overlay_video(segmenter, capture, path, temporary, fps, class_names,
                                 colormap, alpha, progress)
        finally:
            capture.release()
    progress.close()
    print(f"{path.name}: wrote {target}")


def _write_overlay_video(segmenter, capture, path, temporary, fps, class_names, colormap,
                         alpha, progress) -> None:
    writer = None
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
        if writer is not None:
            writer.release()
    if writer is None:
        raise ValueError(f"{path}: no frames could be read")
