"""The data benchmark runs end to end (tiny settings; the real figure is 513x513, 64 images)."""

from __future__ import annotations

from deeplab.benchmark.pipeline import _voc_like_samples, pipeline_throughput


def test_voc_like_records_have_voc_shape():
    (sample,) = _voc_like_samples(0, 0, 1)
    assert sample.image[:2] == b"\xff\xd8"  # A JPEG, stored as-is.
    assert sample.label.shape == (375, 500)
    assert 30_000 < len(sample.image) < 200_000


def test_pipeline_throughput_returns_images_per_second():
    rate = pipeline_throughput(num_records=4, batch_size=2, crop_size=65, num_batches=2,
                               warmup_batches=1)
    assert rate > 0
