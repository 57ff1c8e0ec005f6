"""deeplab-keras: DeepLabv3 / DeepLabv3+ on TensorFlow 2 and Keras 3.

The public API (imported on first use, so ``import deeplab`` and the command-line tools'
``--help`` stay fast):

- ``deeplab.ModelConfig``: the model's configuration (the original's ``ModelOptions``).
- ``deeplab.build_deeplab(config or **fields)``: a Keras ``DeepLab`` model.
- ``deeplab.save_model(model, "x.weights.h5")``: the weights and their config side by side.
- ``deeplab.load_model(path)``: any model ``deeplab-predict`` takes (see
  :func:`deeplab.inference.segmenters.load_any_model`).
- ``deeplab.from_preset(name)``: a model of the original's model zoo by name
  (``deeplab.weights.presets``) with its weights, downloaded and imported into a cache the
  first time (``deeplab.weights.zoo_cache``).
- ``deeplab.fit_dataset(records, split, batch_size, crop_size, model)``: ``(image, label)``
  batches with the original's augmentation, for ``model.fit``.
"""

from __future__ import annotations

import importlib

from deeplab import tf_log_level

# Before anything imports TensorFlow: its C++ start-up INFO and WARNING lines stay hidden
# unless the user sets TF_CPP_MIN_LOG_LEVEL (see deeplab.tf_log_level).
tf_log_level.set_default()

__version__ = "0.1.0"

_PUBLIC = {
    "ModelConfig": ("deeplab.config", "ModelConfig"),
    "build_deeplab": ("deeplab.model", "build_deeplab"),
    "save_model": ("deeplab.runs.store", "save_model"),
    "load_model": ("deeplab.inference.segmenters", "load_any_model"),
    "from_preset": ("deeplab.weights.zoo_import", "from_preset"),
    "fit_dataset": ("deeplab.data.fit", "fit_dataset"),
}
__all__ = sorted(_PUBLIC)


def __getattr__(name: str):
    if name not in _PUBLIC:
        raise AttributeError(f"module 'deeplab' has no attribute {name!r}")
    module, attribute = _PUBLIC[name]
    value = getattr(importlib.import_module(module), attribute)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_PUBLIC])
