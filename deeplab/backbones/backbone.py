"""Shared base of the functional backbones and the atrous stride bookkeeping."""

from __future__ import annotations

import keras

ALLOWED_OUTPUT_STRIDES = (8, 16, 32, None)
# Keras 3 forbids "/" in layer names; "." stands for the original's scope separator, so
# "entry_flow.block1.unit_1.xception_module.shortcut" is the checkpoint scope
# "xception_65/entry_flow/block1/unit_1/xception_module/shortcut".
SCOPE_SEPARATOR = "."


def scope(*parts: str) -> str:
    """Joins scope parts into a Keras layer name."""
    return SCOPE_SEPARATOR.join(parts)


def checkpoint_scope(layer_name: str) -> str:
    """The original's variable scope for a Keras layer name."""
    return layer_name.replace(SCOPE_SEPARATOR, "/")


def check_output_stride(output_stride, owner: str):
    if output_stride not in ALLOWED_OUTPUT_STRIDES:
        raise ValueError(
            f"{owner}: output_stride must be one of {ALLOWED_OUTPUT_STRIDES}, got "
            f"{output_stride!r}."
        )
    return output_stride


class AtrousSchedule:
    """The original's ``stack_blocks_dense`` stride/rate bookkeeping.

    Units run with their nominal stride until the running stride reaches the target
    output stride; from then on they run with stride 1 and an atrous rate equal to the
    product of the strides skipped so far.
    """

    def __init__(self, output_stride: int | None, current_stride: int = 1):
        self.output_stride = output_stride
        self.current_stride = current_stride
        self.rate = 1

    def next_unit(self, stride: int) -> tuple[int, int]:
        """Returns (stride, rate) for a unit of nominal ``stride``."""
        if self.output_stride is not None and self.current_stride == self.output_stride:
            rate = self.rate
            self.rate *= stride
            return 1, rate
        self.current_stride *= stride
        if self.output_stride is not None and self.current_stride > self.output_stride:
            raise ValueError(f"The target output_stride {self.output_stride} cannot be reached.")
        return stride, 1


@keras.saving.register_keras_serializable(package="deeplab")
class Backbone(keras.Model):
    """A functional feature extractor: images in [-1, 1] (or mean-subtracted) → end points.

    Outputs a dict with ``"features"`` (the last feature map) and ``"stride_<s>"`` for
    every decoder end point of the original (s = the end point's nominal stride). Layer
    names map to the original's variable scopes through :func:`checkpoint_scope`.
    Subclasses store their constructor arguments in ``self._config``.
    """

    checkpoint_prefix = ""

    def get_config(self):
        return {"name": self.name, "trainable": self.trainable, **self._config}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    @property
    def feature_channels(self) -> int:
        return self.output["features"].shape[-1]
