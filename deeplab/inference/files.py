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

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm")


def read_rgb(path: Path) -> np.ndarray:
    """RGB uint8 as a viewer shows the file: any mode or bit depth, EXIF orientation applied."""
    from deeplab.data.image_io import read_image_array

    return read_image_array(str(path))


def collect_inputs(inputs: list[str], log=print) -> tuple[list[Path], list[Path]]:
    """(images, videos) from files and folders; unknown paths are an error.

    A folder gives every image the decoder reads (``deeplab.data.image_io.image_suffixes``:
    WebP and TIFF too) and every video; its other files are named in one line, not
    skipped silently (hidden files aside).
    """
    from deeplab.data.image_io import image_suffixes

    image_endings = image_suffixes()
    images, videos = [], []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            others = []
            for child in sorted(p for p in path.iterdir() if p.is_file()):
                suffix = child.suffix.lower()
                if suffix in image_endings:
                    images.append(child)
                elif suffix in VIDEO_SUFFIXES:
                    videos.append(child)
                elif not child.name.startswith("."):
                    others.append(child.name)
            if others:
                log(f"{path}: {len(others)} file(s) skipped, not images or videos of a format "
                    f"read here ({', '.join(others[:5])}{', ...' if len(others) > 5 else ''})")
        elif path.suffix.lower() in VIDEO_SUFFIXES and path.is_file():
            videos.append(path)
        elif path.is_file():
            images.append(path)
        else:
            raise FileNotFoundError(f"--input {item}: no such file or folder")
    return images, videos


def output_stems(paths: list[Path]) -> dict[Path, str]:
    """The name each input's outputs start with: its stem, or where two inputs share one
    (``photo.jpg`` and ``photo.png``, two folders' ``a.png`` or ``clip.mp4``, ``A.png`` and
    ``a.png`` on a file system that ignores case) the stem and extension, then a number, so
    no output is written over another's. Give it every input of one output folder, images
    and videos together."""
    stems: dict[Path, str] = {}
    taken: set[str] = set()
    counts = collections.Counter(p.stem.casefold() for p in paths)
    for path in paths:
        stem = (f"{path.stem}_{path.suffix.lstrip('.')}" if counts[path.stem.casefold()] > 1
                else path.stem)
        candidate, number = stem, 2
        while candidate.casefold() in taken:
            candidate, number = f"{stem}_{number}", number + 1
        taken.add(candidate.casefold())
        stems[path] = candidate
    return stems


def _shown(path: Path, stem: str) -> str:
    """How progress lines name an input: its file name, and where its outputs are named
    otherwise (another input has the same stem) the outputs' stem too."""
    return path.name if stem == path.stem else f"{path.name} (written as {stem}_*)"


def segment_images(segmenter, images, output_dir: Path, class_names, colormap, alpha,
                   color_mask=False, failures: dict[str, str] | None = None,
                   stems: dict[Path, str] | None = None) -> dict[str, dict[str, float]]:
    """Segments each image; an unreadable one is recorded in ``failures`` and skipped.

    Args:
        stems: each input's output stem (:func:`output_stems` of every input written to
            ``output_dir``, videos included); default: from ``images`` alone.

    Returns:
        The class fractions of each image, by its output stem.
    """
    from deeplab.data.errors import DataError

    summaries = {}
    stems = stems or output_stems(images)
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
        summaries[stem] = class_fractions(labels, class_names)
        found = ", ".join(f"{n} {100 * f:.1f}%" for n, f in summaries[stem].items())
        print(f"{_shown(path, stem)}: {found}")
        progress.update()
    if images:
        progress.close()
    return summaries


def segment_video(segmenter, path: Path, output_dir: Path, class_names, colormap, alpha,
                  stem: str | None = None):
    """Writes ``<stem>_overlay.mp4`` (``stem``: from :func:`output_stems` of every input,
    default the file's own stem); frames larger than the decoders' pixel limit (the
    container's header says their size) are refused before the frames are read."""
    from deeplab.data.image_io import MAX_PIXELS

    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise ValueError(f"cannot open video {path}")
    width = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH) or 0)
    height = int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT) or 0)
    if width * height > MAX_PIXELS:
        capture.release()
        raise ValueError(f"{path} declares {width}x{height} frames, more than {MAX_PIXELS} "
                         "pixels (a corrupt header, or frames too large): resize the video")
    fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
    total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) or 0
    stem = stem or path.stem
    target = output_dir / f"{stem}_overlay.mp4"
    progress = Progress(total, f"segmenting {path.name}", interval=10.0, log=print, unit="frames")
    with atomic_path(target) as temporary:
        try:
            _write_overlay_video(segmenter, capture, path, temporary, fps, class_names,
                                 colormap, alpha, progress)
        finally:
            capture.release()
    progress.close()
    print(f"{_shown(path, stem)}: wrote {target}")


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
