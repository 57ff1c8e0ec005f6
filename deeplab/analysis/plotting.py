"""What every PNG picture of the project shares: matplotlib's Agg canvas (no pyplot global
state, no display needed), one resolution, and atomic files.

Figures are laid out with fixed margins computed from their contents rather than
``tight_layout`` (which draws the figure twice), so a picture's pixel size is known before
it is drawn: ``round(inches * DPI)`` (:func:`new_figure`).
"""

from __future__ import annotations

import io
import struct

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from deeplab.runs.atomic import write_bytes

DPI = 110
# Average advance of a DejaVu Sans character, in ems: sizes label margins from name lengths.
CHAR_WIDTH_EM = 0.58


def new_figure(width: float, height: float) -> Figure:
    """A figure of about ``width`` x ``height`` inches on its own Agg canvas, snapped to
    whole pixels (Agg truncates), so its PNG is ``round(inches * DPI)`` pixels."""
    width, height = ((round(size * DPI) + 0.01) / DPI for size in (width, height))
    figure = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(figure)
    return figure


def text_width(text: str, fontsize: float) -> float:
    """About how many inches ``text`` takes at ``fontsize`` points."""
    return len(text) * fontsize * CHAR_WIDTH_EM / 72.0


def png_bytes(figure: Figure) -> bytes:
    """The figure drawn once, as PNG bytes of ``round(size * DPI)`` pixels."""
    buffer = io.BytesIO()
    figure.savefig(buffer, dpi=DPI, format="png")
    return buffer.getvalue()


def save_figure(figure: Figure, path) -> tuple[int, int]:
    """Writes the figure as a PNG atomically; returns its (width, height) in pixels."""
    data = png_bytes(figure)
    write_bytes(path, data)
    return png_size(data)


def png_size(data: bytes) -> tuple[int, int]:
    """(width, height) from a PNG's header.

    Raises:
        ValueError: ``data`` is not a PNG.
    """
    if data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR":
        raise ValueError("not a PNG file")
    width, height = struct.unpack(">II", data[16:24])
    return width, height
