"""Plain-text and Markdown tables for the analysis and benchmark reports."""

from __future__ import annotations

from collections.abc import Sequence


def format_table(headers: Sequence[str], rows: Sequence[Sequence[object]],
                 markdown: bool = False) -> str:
    """Columns padded to their widest cell; text left-aligned, numbers right-aligned.

    Example:
        >>> print(format_table(["rate", "fraction"], [[6, "0.405"]]))
        rate  fraction
        ----  --------
           6     0.405
    """
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    numeric = [all(_is_number(row[i]) for row in cells[1:]) for i in range(len(headers))]

    def line(row):
        padded = [c.rjust(w) if num else c.ljust(w) for c, w, num in zip(row, widths, numeric)]
        return "| " + " | ".join(padded) + " |" if markdown else "  ".join(padded).rstrip()

    rule = ["-" * w for w in widths]
    if markdown:
        rule = [("-" * (w - 1) + ":") if num else "-" * w for w, num in zip(widths, numeric)]
    return "\n".join([line(cells[0]), line(rule)] + [line(row) for row in cells[1:]])


def _is_number(text: str) -> bool:
    try:
        float(text.replace(",", "").rstrip("%x×"))
    except ValueError:
        return False
    return True
