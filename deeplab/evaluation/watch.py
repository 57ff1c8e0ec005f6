"""Which checkpoints eval and vis run on: the given one, or each new one of a training run."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator


def checkpoints_to_process(path: str, limit: int | None, interval_secs: int,
                           timeout_secs: int | None, flag: str, log=print) -> Iterator[str]:
    """Yields the checkpoints to evaluate (or visualise).

    Args:
        path: a training directory, a ``ckpt-N`` prefix or a ``.weights.h5``.
        limit: None: ``path`` once (its latest checkpoint). N > 0: the latest and then each
            new checkpoint of the directory, N in all (the original's
            ``max_number_of_evaluations`` / ``max_number_of_iterations``); <= 0: no limit.
        interval_secs: at least this long between two (the original's
            ``eval_interval_secs``).
        timeout_secs: stop after this long without a new checkpoint (None: never).
        flag: the limiting flag's name, for messages.
        log: where progress lines go.
    """
    if limit is None or (limit == 1 and not os.path.isdir(path)):
        yield path
        return
    if not os.path.isdir(path):
        raise ValueError(f"--{flag}={limit} watches a training directory for new checkpoints; "
                         f"{path} is not a directory (give the run's --train_logdir).")
    import tensorflow as tf

    wait = "until stopped" if timeout_secs is None else f"stops after {timeout_secs}s without one"
    count_text = "each new checkpoint" if limit <= 0 else f"up to {limit} checkpoints"
    log(f"watching {path}: {count_text} ({wait})")
    done = 0
    for checkpoint in tf.train.checkpoints_iterator(path, min_interval_secs=interval_secs,
                                                    timeout=timeout_secs):
        yield checkpoint
        done += 1
        if 0 < limit <= done:
            return
    log(f"no new checkpoint for {timeout_secs}s; stopping.")


def rotated_away(checkpoint: str) -> bool:
    """Whether ``checkpoint`` (a ``ckpt-N`` prefix of a run) is gone: its ``.index`` was
    removed (a live trainer keeps only its newest ``--max_to_keep``)."""
    return (not os.path.isdir(checkpoint) and not checkpoint.endswith(".weights.h5")
            and not os.path.isfile(f"{checkpoint}.index"))


@contextlib.contextmanager
def rotation_tolerated(checkpoint: str, given: str, log=print) -> Iterator[None]:
    """Runs the block on one checkpoint of :func:`checkpoints_to_process`; when it fails
    because the trainer removed that checkpoint meanwhile (``--max_to_keep``: the watcher
    fell behind, or the trainer saved while the model was built), says so and goes on, as
    the next one is newer. The checkpoint the user gave (``given``) is not skipped: its
    error stands.

    Example:
        >>> for checkpoint in checkpoints_to_process(run, 0, 60, None, "watch"):
        ...     with rotation_tolerated(checkpoint, run):
        ...         evaluate(checkpoint)
    """
    try:
        yield
    except Exception:
        if os.fspath(checkpoint) == os.fspath(given) or not rotated_away(os.fspath(checkpoint)):
            raise
        log(f"{checkpoint} was removed by the trainer before it was read (it keeps its newest "
            "--max_to_keep checkpoints); going on with the next one")
