"""What the `datasets/` scripts share: clean errors instead of tracebacks, worker defaults."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

from deeplab.data.errors import DataError


def default_num_workers() -> int:
    """One encoding process per core."""
    return max(1, os.cpu_count() or 1)


def run_converter(convert: Callable[[], object]) -> int:
    """Runs `convert`; a `DataError` becomes one ``error:`` line on stderr and exit status 1.

    Returns the exit status (0 on success) so scripts can ``sys.exit`` it.
    """
    try:
        convert()
    except DataError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted: finished splits are kept, the unfinished one was not written",
              file=sys.stderr)
        return 130
    return 0
