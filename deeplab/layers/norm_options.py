"""The BatchNorm settings a layer hands to every BatchNorm it makes."""

from __future__ import annotations

import dataclasses

from deeplab.layers.batch_norm import BatchNorm


@dataclasses.dataclass(frozen=True)
class NormOptions:
    """BatchNorm decay, epsilon, statistics update and synchronisation, as one value.

    The original set these per component through ``slim.arg_scope`` (heads 0.9997 / 1e-5,
    Xception 0.9997 / 1e-3, MobileNetV2 0.997 / 1e-3, ResNet 0.95 / 1e-5); here a layer
    takes one ``norm`` argument and passes it on to its sublayers.

    Attributes:
        momentum: the original's BN ``decay``.
        epsilon: BN epsilon.
        update_statistics: False reproduces ``fine_tune_batch_norm=False`` (moving
            statistics frozen, gamma and beta still trained).
        synchronized: take batch statistics across replicas.

    Example:
        >>> norm = NormOptions(momentum=0.997, epsilon=1e-3)
        >>> bn = norm.batch_norm("bn")
    """

    momentum: float = 0.9997
    epsilon: float = 1e-5
    update_statistics: bool = True
    synchronized: bool = False

    @classmethod
    def of(cls, value: NormOptions | dict | None, **defaults) -> NormOptions:
        """``value`` as NormOptions: None gives ``defaults`` (the layer's own), a dict (a
        Keras config) its fields."""
        if value is None:
            return cls(**defaults)
        if isinstance(value, dict):
            return cls(**{**defaults, **value})
        return value

    def to_config(self) -> dict:
        return dataclasses.asdict(self)

    def batch_norm(self, name: str, dtype=None) -> BatchNorm:
        return BatchNorm(momentum=self.momentum, epsilon=self.epsilon,
                         update_statistics=self.update_statistics,
                         synchronized=self.synchronized, dtype=dtype, name=name)
