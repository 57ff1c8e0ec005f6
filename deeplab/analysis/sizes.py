"""Image sizes given on the command line as ``S`` or ``H,W``."""

from __future__ import annotations

from deeplab.cli.model_flags import parse_int_list


def parse_size(value: str, flag_name: str) -> tuple[int, int]:
    """``"513"`` → (513, 513); ``"512,1024"`` → (512, 1024); anything else raises ValueError."""
    size = parse_int_list([value], flag_name)
    if len(size) not in (1, 2) or min(size) < 1:
        raise ValueError(f"--{flag_name} takes S or H,W; got {value!r}.")
    return size[0], size[-1]
