"""The head and upsampler registries, with the built-in ASPP, KSAC, none, bilinear and DUC.

A head maps the backbone's features to the decoder's (or the logits') input; an upsampler
makes the logits and brings them to the input size. Each spec declares what the rest of the
library needs to know without naming it: whether its variables are "last layers" (the
original's ``get_extra_layer_scopes``: ``--last_layer_gradient_multiplier`` and
``--initialize_last_layer=false`` apply to them) and which of the original's checkpoint
scopes it holds. The model asks the registry; multipliers, initialisation and importers ask
the model (:meth:`deeplab.model.DeepLab.last_layer_prefixes`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING

import keras

from deeplab.layers.norm_options import NormOptions

if TYPE_CHECKING:
    from deeplab.config import ModelConfig


@dataclasses.dataclass(frozen=True)
class HeadContext:
    """What the model computes once and hands to every head and upsampler builder.

    Attributes:
        weight_decay: L2 weight decay of the conv kernels.
        activation: "relu" or "relu6" (``use_bounded_activation``).
        norm: the head layers' BatchNorm settings (the original's head decay 0.9997 and
            epsilon 1e-5, statistics update and synchronisation).
        pooling_size: the image-pooling kernel (crop-sized as in the original) or None.
    """

    weight_decay: float
    activation: str
    norm: NormOptions
    pooling_size: tuple[int, int] | None


@dataclasses.dataclass(frozen=True)
class HeadSpec:
    """A registered encoder head.

    Attributes:
        name: the ``ModelConfig.head`` value; also the head layer's name, so its variables
            live under ``<name>/``.
        build: ``build(config, context) -> layer`` applied to the backbone features, or None
            for no head (the features go on unchanged).
        atrous_rates: "optional", "required" or "forbidden": whether the head uses
            ``ModelConfig.atrous_rates``.
        last_layers: its variables are last layers (gradient multiplier, skipped by
            ``--initialize_last_layer=false``).
        original_scopes: the original's checkpoint scopes the head's variables come from.
    """

    name: str
    build: Callable[[ModelConfig, HeadContext], keras.layers.Layer] | None
    atrous_rates: str = "optional"
    last_layers: bool = True
    original_scopes: tuple[str, ...] = ()

    def validate(self, config: ModelConfig) -> None:
        """Raises ValueError when ``config`` does not fit this head."""
        if self.atrous_rates == "required" and not config.atrous_rates:
            raise ValueError(
                f"ModelConfig.atrous_rates: head={self.name!r} needs at least one rate, e.g. "
                "(6, 12, 18) at output stride 16.")
        if self.atrous_rates == "forbidden" and config.atrous_rates:
            raise ValueError(f"ModelConfig.atrous_rates: head={self.name!r} has no atrous "
                             "branches; use head='aspp' or 'ksac'.")


@dataclasses.dataclass(frozen=True)
class UpsamplerSpec:
    """A registered logits upsampler (``ModelConfig.upsampling``).

    Attributes:
        name: the ``ModelConfig.upsampling`` value.
        build: ``build(config, context, name) -> layer`` making the logits at the head's
            stride; its layer is the logits layer (always a last layer).
        resize: how ``ResizeLike`` brings them to the input size ("bilinear": align-corners
            resize; "crop": the layer already upsampled, crop to the input).
        trains_at_input_size: the logits layer outputs input-size logits, so the loss takes
            them as they are (``upsample_logits`` does not apply).
    """

    name: str
    build: Callable[[ModelConfig, HeadContext, str], keras.layers.Layer]
    resize: str = "bilinear"
    trains_at_input_size: bool = False


HEADS: dict[str, HeadSpec] = {}
UPSAMPLERS: dict[str, UpsamplerSpec] = {}


def register_head(spec: HeadSpec) -> HeadSpec:
    """Adds (or replaces) a head; returns it."""
    HEADS[spec.name] = spec
    return spec


def register_upsampler(spec: UpsamplerSpec) -> UpsamplerSpec:
    """Adds (or replaces) an upsampler; returns it."""
    UPSAMPLERS[spec.name] = spec
    return spec


def _lookup(registry: dict, name: str, field: str):
    try:
        return registry[name]
    except KeyError:
        raise ValueError(f"ModelConfig.{field}: must be one of {sorted(registry)} (registered "
                         f"in deeplab.heads), got {name!r}.") from None


def get_head_spec(name: str) -> HeadSpec:
    return _lookup(HEADS, name, "head")


def get_upsampler_spec(name: str) -> UpsamplerSpec:
    return _lookup(UPSAMPLERS, name, "upsampling")


# === Built-ins ===
_ASPP_SCOPES = ("image_pooling", "aspp", "concat_projection")


def _aspp_arguments(config: ModelConfig, context: HeadContext) -> dict:
    return dict(
        filters=config.aspp_convs_filters, atrous_rates=config.atrous_rates,
        separable=config.aspp_with_separable_conv, image_pooling=config.add_image_level_feature,
        pooling_size=context.pooling_size, pooling_stride=config.image_pooling_stride,
        concat_projection=config.aspp_with_concat_projection,
        squeeze_and_excitation=config.aspp_with_squeeze_and_excitation,
        gating="hard_sigmoid" if config.image_se_uses_qsigmoid else "sigmoid",
        activation=context.activation,
        weight_decay=context.weight_decay, name=config.head, norm=context.norm)


def _build_aspp(config: ModelConfig, context: HeadContext) -> keras.layers.Layer:
    from deeplab.layers.aspp import ASPP

    return ASPP(**_aspp_arguments(config, context))


def _build_ksac(config: ModelConfig, context: HeadContext) -> keras.layers.Layer:
    from deeplab.layers.ksac import KSAC

    return KSAC(**_aspp_arguments(config, context),
                shared_batch_norm=config.ksac_shared_batch_norm, merge=config.ksac_merge)


def dense_prediction_cell_path(config: ModelConfig):
    """The cell's JSON: ``dense_prediction_cell_json``, or the packaged file of the same
    name (so the original's ``deeplab/core/dense_prediction_cell_branch5_top1_cityscapes
    .json`` works as given), or the packaged Cityscapes cell when the flag is empty."""
    from pathlib import Path

    packaged = Path(__file__).parent / "cells"
    given = config.dense_prediction_cell_json
    if not given:
        return packaged / "dense_prediction_cell_branch5_top1_cityscapes.json"
    if Path(given).is_file():
        return Path(given)
    if (packaged / Path(given).name).is_file():
        return packaged / Path(given).name
    raise ValueError(f"ModelConfig.dense_prediction_cell_json: {given!r} does not exist (nor "
                     f"is it one of the packaged cells: "
                     f"{sorted(p.name for p in packaged.glob('*.json'))}).")


def read_dense_prediction_cell(config: ModelConfig) -> list[dict]:
    """The cell's operations, read and checked from :func:`dense_prediction_cell_path`."""
    import json

    from deeplab.layers.dense_prediction_cell import parse_cell

    path = dense_prediction_cell_path(config)
    try:
        cell = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"ModelConfig.dense_prediction_cell_json: {path} is not valid JSON "
                         f"({error}).") from None
    return parse_cell(cell)


def _build_dense_prediction_cell(config: ModelConfig, context: HeadContext):
    from deeplab.layers.dense_prediction_cell import DensePredictionCell

    return DensePredictionCell(
        config.dense_prediction_cell, output_stride=config.output_stride or 32,
        crop_size=config.crop_size,
        image_pooling_crop_size=config.image_pooling_crop_size,
        activation=context.activation, weight_decay=context.weight_decay, norm=context.norm,
        name=config.head)


def _build_logits_conv(config: ModelConfig, context: HeadContext, name: str):
    from deeplab.layers.atrous_conv2d import AtrousConv2D
    from deeplab.layers.conv_bn_act import l2_regularizer

    if not config.aspp_with_batch_norm and config.atrous_rates:
        from deeplab.layers.multi_rate_logits import MultiRateLogits

        return MultiRateLogits(config.num_classes, config.atrous_rates,
                               config.logits_kernel_size, context.weight_decay, name=name)
    return AtrousConv2D(config.num_classes, 1, use_bias=True,
                        kernel_initializer=keras.initializers.TruncatedNormal(stddev=0.01),
                        kernel_regularizer=l2_regularizer(context.weight_decay), name=name)


def _build_duc(config: ModelConfig, context: HeadContext, name: str):
    from deeplab.layers.duc import DUC

    return DUC(config.num_classes, upsample_factor=config.logits_stride,
               variant=config.duc_variant, weight_decay=context.weight_decay, name=name)


register_head(HeadSpec("aspp", _build_aspp, original_scopes=_ASPP_SCOPES))
# KSAC's shared kernel has no counterpart in the original; its BN and projection scopes do.
register_head(HeadSpec("ksac", _build_ksac, atrous_rates="required",
                       original_scopes=_ASPP_SCOPES))
register_head(HeadSpec("none", None, atrous_rates="forbidden", last_layers=False))
register_head(HeadSpec("dpc", _build_dense_prediction_cell, atrous_rates="forbidden",
                       original_scopes=("meta_architecture",)))
register_upsampler(UpsamplerSpec("bilinear", _build_logits_conv))
register_upsampler(UpsamplerSpec("duc", _build_duc, resize="crop", trains_at_input_size=True))
