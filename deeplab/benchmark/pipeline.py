"""Input pipeline throughput: training batches of 513x513 crops from VOC-sized JPEG records."""

from __future__ import annotations

import os
import tempfile
import time

import numpy as np

from deeplab.data.descriptor import DatasetDescriptor
from deeplab.data.writer import Sample, Task, build_records

_VOC_HEIGHT, _VOC_WIDTH = 375, 500


def _voc_like_samples(seed: int, start: int, count: int) -> list[Sample]:
    """JPEG images with photo-like content and size (500x375, ~60-100 KB) and VOC-like labels."""
    import cv2

    from deeplab.data.image_io import encode_jpeg

    samples = []
    for index in range(start, start + count):
        rng = np.random.default_rng([seed, index])
        coarse = rng.uniform(0, 255, size=(12, 16, 3))
        image = cv2.resize(coarse, (_VOC_WIDTH, _VOC_HEIGHT), interpolation=cv2.INTER_CUBIC)
        image += rng.normal(0, 12, size=image.shape)
        label = np.zeros((_VOC_HEIGHT, _VOC_WIDTH), np.uint8)
        for _ in range(3):
            center = (int(rng.integers(0, _VOC_WIDTH)), int(rng.integers(0, _VOC_HEIGHT)))
            axes = (int(rng.integers(20, 150)), int(rng.integers(20, 120)))
            cls = int(rng.integers(1, 21))
            cv2.ellipse(label, center, axes, 0, 0, 360, cls, -1)
            cv2.ellipse(image, center, axes, 0, 0, 360, rng.uniform(0, 255, size=3).tolist(), -1)
            cv2.ellipse(label, center, axes, 0, 0, 360, 255, 3)
        jpeg = encode_jpeg(np.clip(image, 0, 255).astype(np.uint8), quality=90)
        samples.append(Sample(f"bench_{index:06d}", jpeg, label, f"<benchmark {index}>"))
    return samples


def write_benchmark_records(output_dir: str, num_records: int = 64, seed: int = 0) -> None:
    """Writes `num_records` VOC-sized JPEG records (split ``train``, 4 shards)."""
    descriptor = DatasetDescriptor("benchmark_voc_like", {"train": num_records}, num_classes=21,
                                   ignore_label=255)
    tasks = [Task(_voc_like_samples, (seed, start, min(16, num_records - start)),
                  count=min(16, num_records - start)) for start in range(0, num_records, 16)]
    build_records(output_dir, descriptor, {"train": tasks}, num_shards=4)


def pipeline_throughput(
    num_records: int = 64,
    batch_size: int = 8,
    crop_size: int = 513,
    num_batches: int = 40,
    warmup_batches: int = 5,
    workdir: str | None = None,
) -> float:
    """Training pipeline images/s for `crop_size` crops from VOC-sized JPEG records.

    Records are generated in a temporary directory (or `workdir`). The pipeline is the training
    one with the original's defaults: random scale 0.5:0.25:2.0, pad, crop, flip.

    Returns:
      Images per second over `num_batches` batches after `warmup_batches`.
    """
    from deeplab.data.pipeline import PreprocessConfig, make_dataset

    with tempfile.TemporaryDirectory(prefix="deeplab-bench-") as tmp:
        record_dir = workdir or os.path.join(tmp, "records")
        write_benchmark_records(record_dir, num_records)
        dataset = make_dataset(record_dir, "train", batch_size, is_training=True,
                               config=PreprocessConfig(crop_size=(crop_size, crop_size)),
                               shuffle_buffer=num_records)
        iterator = iter(dataset)
        for _ in range(warmup_batches):
            next(iterator)
        start = time.perf_counter()
        for _ in range(num_batches):
            batch = next(iterator)
        batch["image"].numpy()  # Make sure the last batch is materialised.
        elapsed = time.perf_counter() - start
    return num_batches * batch_size / elapsed
