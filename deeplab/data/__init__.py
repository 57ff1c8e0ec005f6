"""Data: the original's TFRecord format, converters, the input pipeline, a synthetic set.

This package import stays light (no TensorFlow): converters run their encoding in worker
processes that import only what they need. The TF parts live in `deeplab.data.pipeline`,
`deeplab.data.input_preprocess`, `deeplab.data.tfds_adapter` and `deeplab.benchmark.pipeline`.
"""

from deeplab.data.descriptor import (
    DatasetDescriptor,
    get_dataset,
    register_dataset,
    registered_datasets,
)
from deeplab.data.errors import DataError

__all__ = [
    "DataError",
    "DatasetDescriptor",
    "get_dataset",
    "register_dataset",
    "registered_datasets",
]
