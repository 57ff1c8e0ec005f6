"""Helpers shared by the converters."""

from __future__ import annotations

import collections
import logging
import os
from collections.abc import Iterable, Sequence

from deeplab.data import image_io
from deeplab.data.errors import DataError
from deeplab.data.writer import Sample

logger = logging.getLogger("deeplab.data")

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".ppm", ".gif")


def load_pair(filename: str, image_path: str, label_path: str | None,
              color_table: Sequence[tuple[tuple[int, int, int], int]] | None = None,
              unknown_color_label: int | None = None) -> list[Sample]:
    """Reads an image file and its class-id mask (a writer task function).

    Args:
      filename: the record's ``image/filename``.
      image_path: the image file.
      label_path: the mask file, or None for an unlabeled example.
      color_table: (rgb, id) pairs for colour-coded masks (a list, so it pickles compactly).
      unknown_color_label: id for colours missing from the table; None makes them an error.
    """
    label = None
    if label_path is not None:
        table = dict(color_table) if color_table is not None else None
        label = image_io.read_index_mask(label_path, table, unknown_color_label)
    return [Sample(filename, image_io.read_bytes(image_path), label, image_path, label_path)]


def read_list(path: str, keep_duplicates: bool = False) -> list[str]:
    """Reads an image-set list (one name per line; VOC lists may carry a second column).

    A name listed twice would be written twice and counted twice by eval; by default each
    is kept once, in first-seen order, with a warning. ``keep_duplicates`` writes the list
    as it is, as the original did.

    Raises:
      DataError: if the file is missing or empty.
    """
    if not os.path.isfile(path):
        raise DataError(f"list file {path!r} does not exist")
    with open(path, encoding="utf-8") as f:
        names = [line.split()[0] for line in f if line.strip()]
    if not names:
        raise DataError(f"list file {path!r} is empty: the split would have no examples")
    counts = collections.Counter(names)
    repeated = {name: n for name, n in counts.items() if n > 1}
    if repeated and not keep_duplicates:
        shown = ", ".join(f"{name} x{n}" for name, n in list(repeated.items())[:5])
        logger.warning("%s names %d image(s) more than once (%s); each is written once "
                       "(--keep_duplicates writes the list as it is, as the original did)",
                       path, len(repeated), shown)
        names = list(dict.fromkeys(names))
    return names


def find_with_stem(folder: str, stem: str, extensions: Iterable[str] = IMAGE_EXTENSIONS
                   ) -> str | None:
    """The first existing ``folder/stem<ext>`` (any case of the extension), or None."""
    for ext in extensions:
        for candidate in (ext, ext.upper()):
            path = os.path.join(folder, stem + candidate)
            if os.path.isfile(path):
                return path
    return None


def require_dir(path: str, what: str) -> str:
    """Returns `path` if it is a directory, else raises a DataError naming `what`."""
    if not os.path.isdir(path):
        raise DataError(f"{what} {path!r} does not exist or is not a directory")
    return path


def missing_files_error(kind: str, missing: Sequence[str], where: str) -> DataError:
    """A DataError listing the first few missing files."""
    shown = ", ".join(repr(m) for m in missing[:5])
    more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
    return DataError(f"{len(missing)} {kind} not found in {where}: {shown}{more}")
