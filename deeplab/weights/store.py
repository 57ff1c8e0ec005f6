"""Saving and loading a model as ``<name>.weights.h5`` + ``<name>.config.json``."""

from __future__ import annotations

import json
import os
from pathlib import Path

from deeplab.config import ModelConfig
from deeplab.model import DeepLab

WEIGHTS_SUFFIX = ".weights.h5"
CONFIG_SUFFIX = ".config.json"


def config_path_for(weights_path: str | Path) -> Path:
    """``x.weights.h5`` → ``x.config.json``."""
    weights_path = Path(weights_path)
    if not weights_path.name.endswith(WEIGHTS_SUFFIX):
        raise ValueError(f"Weights files end with {WEIGHTS_SUFFIX}: got {weights_path}.")
    return weights_path.with_name(weights_path.name[: -len(WEIGHTS_SUFFIX)] + CONFIG_SUFFIX)


def save_model(model: DeepLab, weights_path: str | Path) -> Path:
    """Writes the weights and the ModelConfig beside them, each atomically."""
    weights_path = Path(weights_path)
    config_path = config_path_for(weights_path)
    weights_path.parent.mkdir(parents=True, exist_ok=True)
    temporary = weights_path.with_name(f".tmp-{os.getpid()}-{weights_path.name}")
    try:
        model.save_weights(str(temporary))
        os.replace(temporary, weights_path)
    finally:
        temporary.unlink(missing_ok=True)
    temporary_config = config_path.with_name(f".tmp-{os.getpid()}-{config_path.name}")
    temporary_config.write_text(json.dumps(model.config.to_dict(), indent=2) + "\n")
    os.replace(temporary_config, config_path)
    return weights_path


def load_model(weights_path: str | Path, **overrides) -> DeepLab:
    """Rebuilds a DeepLab model from ``x.config.json`` and loads ``x.weights.h5``.

    ``overrides`` replace config fields that do not change the weights' shapes, e.g.
    ``output_stride=8`` to evaluate or export at a denser stride than training.
    """
    weights_path = Path(weights_path)
    config_path = config_path_for(weights_path)
    for path in (weights_path, config_path):
        if not path.is_file():
            raise FileNotFoundError(
                f"{path} not found: a model is saved as {weights_path.name} plus "
                f"{config_path.name} side by side (scripts/import_weights.py writes both)."
            )
    values = json.loads(config_path.read_text())
    values.update(overrides)
    model = DeepLab(ModelConfig.from_dict(values))
    model.load_weights(str(weights_path))
    return model
