"""Backbones keyed by the original's ``model_variant`` names (``core/feature_extractor.py``)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from deeplab.backbones.backbone import Backbone
from deeplab.backbones.mobilenet_v2 import MobileNetV2
from deeplab.backbones.mobilenet_v3 import MobileNetV3
from deeplab.backbones.nas import NASNetwork
from deeplab.backbones.resnet_v1 import ResNetV1
from deeplab.backbones.xception import Xception
from deeplab.layers.preprocess import IMAGENET_MEAN_RGB


@dataclasses.dataclass(frozen=True)
class BackboneSpec:
    """What the model builder needs to know about a backbone.

    Attributes:
        name: the original's ``model_variant``.
        build: ``build(**options) -> Backbone``; options are the backbone's own
            constructor arguments (output_stride, BN settings, ...).
        preprocessing: "unit_range" (x * 2 / 255 - 1) or "imagenet_mean" (x - mean RGB).
        decoder_strides: strides with a decoder end point (``networks_to_feature_maps``).
        batch_norm_momentum: BN decay of the backbone's arg scope.
        batch_norm_epsilon: BN epsilon of the backbone's arg scope.
        weight_decay: the value the original recommends for this family.
        supports_multi_grid: takes ``multi_grid``.
        config_options: ``config_options(model_config) -> dict``, the family's own
            constructor arguments read from the ModelConfig (width multiplier, multi-grid...).
    """

    name: str
    build: Callable[..., Backbone]
    preprocessing: str
    decoder_strides: tuple[int, ...]
    batch_norm_momentum: float
    batch_norm_epsilon: float
    weight_decay: float
    supports_multi_grid: bool = True
    config_options: Callable[..., dict] = lambda config: {}

    @property
    def mean_pixel(self) -> tuple[float, float, float]:
        """Padding value that becomes ~0 after preprocessing (the original's ``mean_pixel``)."""
        if self.preprocessing == "imagenet_mean":
            return IMAGENET_MEAN_RGB
        return (127.5, 127.5, 127.5)


def _xception(variant):
    return lambda **options: Xception(variant, **options)


def _resnet(depth, beta):
    return lambda **options: ResNetV1(depth, beta=beta, **options)


def _mobilenet_options(config) -> dict:
    return dict(depth_multiplier=config.depth_multiplier, divisible_by=config.divisible_by,
                final_layer=config.mobilenet_final_layer)


def _mobilenet_v3(variant):
    return lambda **options: MobileNetV3(variant, **options)


def _mobilenet_v3_options(config) -> dict:
    return dict(depth_multiplier=config.depth_multiplier)


def _xception_options(config) -> dict:
    return dict(multi_grid=config.multi_grid,
                use_bounded_activation=config.use_bounded_activation)


def _resnet_options(config) -> dict:
    options = _xception_options(config)
    if config.hdc_unit_rates:
        options["unit_rates"] = config.hdc_unit_rates
    return options


def _nas(variant):
    return lambda **options: NASNetwork(variant, **options)


def _nas_options(config) -> dict:
    return dict(num_conv_filters=config.nas_stem_output_num_conv_filters,
                use_classification_head=config.nas_use_classification_head,
                remove_os32_stride=config.nas_remove_os32_stride)


_XCEPTION_BN = dict(batch_norm_momentum=0.9997, batch_norm_epsilon=1e-3, weight_decay=4e-5,
                    config_options=_xception_options)
_RESNET_BN = dict(batch_norm_momentum=0.95, batch_norm_epsilon=1e-5, weight_decay=1e-4,
                  config_options=_resnet_options)

BACKBONES: dict[str, BackboneSpec] = {
    spec.name: spec
    for spec in (
        BackboneSpec("mobilenet_v2", MobileNetV2, "unit_range", (4, 8, 16), 0.997, 1e-3, 4e-5,
                     supports_multi_grid=False, config_options=_mobilenet_options),
        *(
            BackboneSpec(name, _mobilenet_v3(variant), "unit_range", strides, 0.997, 1e-3, 4e-5,
                         supports_multi_grid=False, config_options=_mobilenet_v3_options)
            for name, variant, strides in (
                ("mobilenet_v3_large_seg", "large_seg", (4, 8, 16)),
                ("mobilenet_v3_small_seg", "small_seg", (4, 8, 16)),
                ("mobilenet_edgetpu", "edgetpu", ()),
            )
        ),
        *(
            BackboneSpec(v, _xception(v), "unit_range", (4, 8, 16), **_XCEPTION_BN)
            for v in ("xception_41", "xception_65", "xception_71")
        ),
        *(
            BackboneSpec(f"nas_{v}", _nas(v), "unit_range", (4, 8, 16), 0.9997, 1e-3, 4e-5,
                         supports_multi_grid=False, config_options=_nas_options)
            for v in ("pnasnet", "hnasnet")
        ),
        BackboneSpec("resnet_v1_50", _resnet(50, False), "imagenet_mean", (4, 8, 16), **_RESNET_BN),
        BackboneSpec("resnet_v1_50_beta", _resnet(50, True), "unit_range", (4, 8, 16),
                     **_RESNET_BN),
        BackboneSpec("resnet_v1_101", _resnet(101, False), "imagenet_mean", (4, 8, 16),
                     **_RESNET_BN),
        BackboneSpec("resnet_v1_101_beta", _resnet(101, True), "unit_range", (4, 8, 16),
                     **_RESNET_BN),
    )
}


def get_backbone_spec(model_variant: str) -> BackboneSpec:
    """Looks up a backbone; unknown names raise ValueError listing the known ones."""
    try:
        return BACKBONES[model_variant]
    except KeyError:
        raise ValueError(
            f"Unknown model_variant {model_variant!r}; choose one of {sorted(BACKBONES)}."
        ) from None
