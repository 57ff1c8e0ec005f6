"""Integer lists and image sizes given on the command line (``6,12,18``; ``S`` or ``H,W``).

TensorFlow-free, so the CLIs that only do arithmetic (hdc, atrous_rates) start at once.
"""

from __future__ import annotations


def parse_ints(value: str, flag_name: str) -> tuple[int, ...]:
    """``"1,2,5"`` → (1, 2, 5); a non-integer item raises ValueError naming the flag."""
    try:
        return tuple(int(item) for item in str(value).split(",") if item.strip())
    except ValueError:
        raise ValueError(f"--{flag_name} takes integers, e.g. --{flag_name}=6,12,18; got "
                         f"{value!r}.") from None


def parse_size(value: str, flag_name: str) -> tuple[int, int]:
    """``"513"`` → (513, 513); ``"512,1024"`` → (512, 1024); anything else raises ValueError."""
    size = parse_ints(value, flag_name)
    if len(size) not in (1, 2) or min(size) < 1:
        raise ValueError(f"--{flag_name} takes S or H,W; got {value!r}.")
    return size[0], size[-1]
