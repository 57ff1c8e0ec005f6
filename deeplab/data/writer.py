"""Writes TFRecord shards from converter tasks: parallel, atomic, idempotent.

A converter turns its data set's layout into `Task`s (a picklable module-level function plus
arguments that returns `Sample`s). `build_records` runs the tasks in worker processes, where the
images are checked and encoded, and writes the shards in this process:

* every shard of a split is written under a hidden temporary name and all are renamed when the
  whole split is complete, so an interrupted or failed run never leaves a partial shard nor
  mixes old and new shards;
* a split whose inputs and options are unchanged since the last run (same fingerprint in
  `dataset.json`, shards present) is skipped, so re-running a converter is cheap and safe.
"""

from __future__ import annotations

import concurrent.futures
import concurrent.futures.process
import dataclasses
import functools
import hashlib
import json
import logging
import multiprocessing
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np

from deeplab.data import image_io, records
from deeplab.data.descriptor import DatasetDescriptor, load_dataset_json, write_dataset_json
from deeplab.data.errors import DataError
from deeplab.data.progress import Progress
from deeplab.data.statistics import (
    STATISTICS_KEY,
    SplitStatistics,
    dominance_warning,
    label_histogram,
)

logger = logging.getLogger("deeplab.data")

# Bump when the bytes written for the same inputs change, so old records get rebuilt.
_WRITER_VERSION = 1
_MAX_WARNINGS_SHOWN = 5


@dataclasses.dataclass(frozen=True)
class Sample:
    """One example before encoding.

    Attributes:
      filename: the value of ``image/filename`` (the original used the basename without
        extension for VOC and Cityscapes).
      image: the image file's bytes (stored as-is when 8-bit RGB JPEG/PNG) or an HxWx3 uint8
        RGB array.
      label: HxW uint8 class ids, or None for an unlabeled split.
      image_path: where the image came from, for error messages.
      label_path: where the label came from, for error messages.
    """

    filename: str
    image: bytes | np.ndarray
    label: np.ndarray | None
    image_path: str
    label_path: str | None = None


@dataclasses.dataclass(frozen=True)
class Task:
    """A unit of work for a worker process: ``fn(*args)`` returns `count` samples."""

    fn: Callable[..., list[Sample]]
    args: tuple
    count: int = 1


@dataclasses.dataclass(frozen=True)
class EncodeOptions:
    """How samples are checked and encoded.

    Attributes:
      num_classes: labels must be < num_classes or equal to `ignore_label`.
      ignore_label: the void value.
      image_format: format ('png' or 'jpg') for images that must be re-encoded (arrays, and
        files that are not 8-bit RGB JPEG/PNG). Files already in JPEG/PNG are kept byte for byte.
    """

    num_classes: int
    ignore_label: int
    image_format: str = "png"


class Encoded(NamedTuple):
    """One written example: the serialised tf.train.Example, warnings, and the label's
    :func:`~deeplab.data.statistics.label_histogram` (None without a label)."""

    serialized: bytes
    warnings: list[str]
    histogram: np.ndarray | None = None


def encode_sample(sample: Sample, options: EncodeOptions) -> Encoded:
    """Checks one sample and encodes it."""
    if isinstance(sample.image, np.ndarray):
        array = sample.image
        if array.ndim != 3 or array.shape[2] != 3 or array.dtype != np.uint8:
            raise DataError(f"{sample.image_path}: expected an HxWx3 uint8 image array, got "
                            f"{array.dtype} {array.shape}")
        height, width = array.shape[:2]
        if options.image_format in ("jpg", "jpeg"):
            data, fmt = image_io.encode_jpeg(array), "jpeg"
        else:
            data, fmt = image_io.encode_png(array), "png"
        warnings: list[str] = []
    else:
        data, fmt, height, width, warnings = image_io.prepare_image(
            sample.image, sample.image_path, options.image_format)
    label_data = None
    histogram = None
    if sample.label is not None:
        image_io.check_label(sample.label, height, width, options.num_classes,
                             options.ignore_label, sample.image_path,
                             sample.label_path or sample.image_path)
        label_data = image_io.encode_png(np.ascontiguousarray(sample.label, np.uint8))
        histogram = label_histogram(sample.label)
    serialized = records.image_seg_to_example(
        data, sample.filename, height, width, label_data, image_format=fmt)
    return Encoded(serialized, warnings, histogram)


def run_task(task: Task, options: EncodeOptions) -> list[Encoded]:
    """Runs one task and encodes its samples (executed in the worker processes)."""
    samples = task.fn(*task.args)
    if len(samples) != task.count:
        raise DataError(f"internal: task {task.fn.__name__}{task.args!r} announced "
                        f"{task.count} samples but produced {len(samples)}")
    return [encode_sample(s, options) for s in samples]


def default_num_workers() -> int:
    """One encoding process per core."""
    return max(1, os.cpu_count() or 1)


def check_writable(output_dir: str) -> None:
    """Fails with one line unless records can be written into `output_dir` (made if needed).

    Raises:
      DataError: naming the folder, the reason and what to do.
    """
    from deeplab.runs.atomic import unwritable_reason

    reason = unwritable_reason(output_dir)
    if reason:
        raise DataError(
            f"cannot write to the output folder {output_dir!r}: {reason}; choose a "
            "writable --output_dir or fix the folder's permissions")


def exit_with_parent(parent_pid: int, poll_seconds: float = 1.0) -> None:
    """Makes this worker process exit when ``parent_pid`` dies (a pool initializer).

    A SIGKILLed converter cannot shut its pool down, and idle workers would wait on their
    task queue forever. On Linux the kernel signals the worker at once (PR_SET_PDEATHSIG);
    everywhere, a daemon thread notices within ``poll_seconds`` that the parent is gone.
    """
    import signal
    import sys
    import threading
    import time

    if sys.platform.startswith("linux"):
        import ctypes

        try:
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except OSError:
            pass

    def watch():
        while os.getppid() == parent_pid:
            time.sleep(poll_seconds)
        os._exit(1)

    if os.getppid() != parent_pid:  # the parent died before the initializer ran
        os._exit(1)
    threading.Thread(target=watch, daemon=True, name="exit-with-parent").start()


def _fingerprint_value(value: Any) -> Any:
    if isinstance(value, str) and os.path.isfile(value):
        stat = os.stat(value)
        return [value, stat.st_size, stat.st_mtime_ns]
    if isinstance(value, (list, tuple)):
        return [_fingerprint_value(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _fingerprint_value(v) for k, v in sorted(value.items())}
    return repr(value)


def fingerprint(tasks: Sequence[Task], options: EncodeOptions, num_shards: int) -> str:
    """A hash of the inputs (paths, sizes, mtimes), the task functions and the options."""
    digest = hashlib.sha256()
    digest.update(json.dumps([_WRITER_VERSION, dataclasses.asdict(options), num_shards]).encode())
    for task in tasks:
        name = f"{task.fn.__module__}.{task.fn.__qualname__}"
        digest.update(json.dumps([name, _fingerprint_value(task.args), task.count]).encode())
    return digest.hexdigest()


def shard_ranges(num_examples: int, num_shards: int) -> list[tuple[int, int]]:
    """Contiguous [start, end) example ranges, as balanced as possible, none empty."""
    num_shards = max(1, min(num_shards, num_examples))
    return [(k * num_examples // num_shards, (k + 1) * num_examples // num_shards)
            for k in range(num_shards)]


def _split_is_current(output_dir: str, split: str, fp: str) -> bool:
    try:
        info = load_dataset_json(output_dir).get("splits", {}).get(split, {})
    except DataError:
        return False
    if info.get("fingerprint") != fp:
        return False
    sizes = info.get("shard_bytes") or []
    names = [records.shard_filename(split, k, len(sizes)) for k in range(len(sizes))]
    return bool(names) and all(
        os.path.isfile(os.path.join(output_dir, n))
        and os.path.getsize(os.path.join(output_dir, n)) == size
        for n, size in zip(names, sizes, strict=True))


def _remove_stale_temporaries(output_dir: str, split: str) -> None:
    # Temporaries left by a killed run: ".<shard>.tmp-<pid>" whose process is gone.
    for name in os.listdir(output_dir):
        if not (name.startswith(f".{split}-") and ".tfrecord.tmp-" in name):
            continue
        pid = int(name.rsplit("-", 1)[1]) if name.rsplit("-", 1)[1].isdigit() else -1
        try:
            os.kill(pid, 0)
            alive = pid > 0
        except OSError:
            alive = False
        if not alive:
            os.remove(os.path.join(output_dir, name))


def _log_warning_summary(split: str, count: int) -> None:
    if count > _MAX_WARNINGS_SHOWN:
        logger.warning("%s: %d images were converted (first %d listed above)", split, count,
                       _MAX_WARNINGS_SHOWN)


def build_split(
    output_dir: str,
    split: str,
    tasks: Sequence[Task],
    options: EncodeOptions,
    num_shards: int,
    num_workers: int = 1,
    overwrite: bool = False,
) -> dict[str, Any] | None:
    """Encodes `tasks` into the shards of `split`; returns the split's bookkeeping.

    Returns None when the split is already up to date (and `overwrite` is False).

    Raises:
      DataError: for an empty split or any bad input; nothing is left behind in that case.
    """
    num_examples = sum(t.count for t in tasks)
    if num_examples == 0:
        raise DataError(f"split {split!r} has no examples; check the input lists and folders")
    os.makedirs(output_dir, exist_ok=True)
    fp = fingerprint(tasks, options, num_shards)
    if not overwrite and _split_is_current(output_dir, split, fp):
        logger.info("%s: up to date in %s (%d examples), skipped", split, output_dir,
                    num_examples)
        return None
    _remove_stale_temporaries(output_dir, split)

    import tensorflow as tf  # Only the parent process writes; workers stay TF-free.

    ranges = shard_ranges(num_examples, num_shards)
    finals = [os.path.join(output_dir, records.shard_filename(split, k, len(ranges)))
              for k in range(len(ranges))]
    temps = [os.path.join(output_dir, f".{os.path.basename(f)}.tmp-{os.getpid()}")
             for f in finals]
    progress = Progress(num_examples, f"{split}")
    statistics = SplitStatistics.empty(options.num_classes)
    encode = functools.partial(run_task, options=options)
    warning_count = 0
    pool = None
    writer = None
    try:
        if num_workers > 1:
            # spawn, not fork: the parent may hold TensorFlow's threads and locks. An executor
            # rather than a Pool: if workers die it raises instead of respawning them forever.
            pool = concurrent.futures.ProcessPoolExecutor(
                num_workers, mp_context=multiprocessing.get_context("spawn"),
                initializer=exit_with_parent, initargs=(os.getpid(),))
            chunk = max(1, min(16, len(tasks) // (num_workers * 8)))
            results = pool.map(encode, tasks, chunksize=chunk)
        else:
            results = map(encode, tasks)
        index = 0
        shard = -1
        for encoded in results:
            for serialized, warnings, histogram in encoded:
                if histogram is not None:
                    statistics.add(histogram, options.ignore_label)
                while shard < 0 or index >= ranges[shard][1]:
                    if writer is not None:
                        writer.close()
                    shard += 1
                    writer = tf.io.TFRecordWriter(temps[shard])
                writer.write(serialized)
                index += 1
                for w in warnings:
                    warning_count += 1
                    if warning_count <= _MAX_WARNINGS_SHOWN:
                        logger.warning("%s", w)
            progress.update(len(encoded))
        writer.close()
        writer = None
        if index != num_examples:
            raise DataError(f"internal: wrote {index} of {num_examples} examples")
        for temp, final in zip(temps, finals, strict=True):
            os.replace(temp, final)
    except BaseException as error:
        if writer is not None:
            writer.close()
        for temp in temps:
            if os.path.exists(temp):
                os.remove(temp)
        if isinstance(error, (OSError, tf.errors.OpError)):
            reason = getattr(error, "message", None) or getattr(error, "strerror", None) or error
            raise DataError(f"writing split {split!r} to {output_dir!r} failed: {reason}; "
                            "check the free space and permissions of --output_dir") from None
        if isinstance(error, concurrent.futures.process.BrokenProcessPool):
            raise DataError(
                "the encoding worker processes died. With num_workers > 1 the calling script "
                "must start from `if __name__ == '__main__':` (Python's spawn rule); otherwise "
                "look for an out-of-memory kill, or use num_workers=1") from None
        raise
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
    progress.close()
    _log_warning_summary(split, warning_count)
    void_fraction = statistics.void_fraction()
    if void_fraction is not None and void_fraction >= records.MOSTLY_VOID:
        logger.warning(
            "%s: %.1f%% of the label pixels are void (ignore label %d): training on it learns "
            "almost nothing. Check that the masks hold class ids 0..%d (not colours, not "
            "all 255) and that --num_classes / the ignore label match them", split,
            100 * void_fraction, options.ignore_label, options.num_classes - 1)
    # Remove shards of an earlier run with a different shard count.
    for name in os.listdir(output_dir):
        parsed = records.parse_shard_filename(name)
        if parsed and parsed[0] == split and parsed[2] != len(ranges):
            os.remove(os.path.join(output_dir, name))
    return {
        "num_examples": num_examples,
        "num_shards": len(ranges),
        "shard_bytes": [os.path.getsize(f) for f in finals],
        "fingerprint": fp,
        "converted_images": warning_count,
        "void_fraction": None if void_fraction is None else round(void_fraction, 6),
        # Class pixels and images per class (void excluded), for class balancing.
        STATISTICS_KEY: statistics.to_json() if statistics.num_images else None,
    }


def build_records(
    output_dir: str,
    descriptor: DatasetDescriptor,
    split_tasks: Mapping[str, Sequence[Task]],
    num_shards: int,
    num_workers: int = 1,
    image_format: str = "png",
    overwrite: bool = False,
) -> DatasetDescriptor:
    """Builds the records of every split and writes `dataset.json`.

    Args:
      output_dir: where the shards and `dataset.json` go.
      descriptor: the data set (name, classes, ignore label...). Its split sizes are replaced by
        the numbers of examples actually written.
      split_tasks: split name -> tasks producing that split's samples.
      num_shards: shards per split (fewer when a split has fewer examples).
      num_workers: encoding processes (spawned: the calling script needs the usual
        ``if __name__ == "__main__":`` guard); 1 encodes in this process.
      image_format: format for images that must be re-encoded ('png' or 'jpg').
      overwrite: rebuild splits even when they are up to date.

    Returns:
      The descriptor as written to `dataset.json`.
    """
    if image_format not in ("png", "jpg", "jpeg"):
        raise DataError(f"image_format must be png, jpg or jpeg, not {image_format!r}")
    check_writable(output_dir)
    options = EncodeOptions(descriptor.num_classes, descriptor.ignore_label, image_format)
    sizes = {}
    for split, tasks in split_tasks.items():
        info = build_split(output_dir, split, tasks, options, num_shards, num_workers, overwrite)
        if info and info.get(STATISTICS_KEY):
            warning = dominance_warning(split, SplitStatistics.from_json(info[STATISTICS_KEY]),
                                        descriptor.class_names)
            if warning:
                logger.warning("%s", warning)
        sizes[split] = sum(t.count for t in tasks)
        labeled = descriptor.is_labeled(split)
        current = dataclasses.replace(
            descriptor, splits_to_sizes={split: sizes[split]},
            unlabeled_splits=() if labeled else (split,))
        # Written after each split so that a later failure keeps the finished splits usable.
        write_dataset_json(output_dir, current, {split: info} if info else None)
    return dataclasses.replace(descriptor, splits_to_sizes=sizes)
