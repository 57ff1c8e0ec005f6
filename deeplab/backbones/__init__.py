"""Backbones and their registry."""

from deeplab.backbones.backbone import Backbone, checkpoint_scope
from deeplab.backbones.mobilenet_v2 import MobileNetV2
from deeplab.backbones.mobilenet_v3 import MobileNetV3
from deeplab.backbones.nas import NASNetwork
from deeplab.backbones.registry import BACKBONES, BackboneSpec, get_backbone_spec
from deeplab.backbones.resnet_v1 import ResNetV1
from deeplab.backbones.xception import Xception

__all__ = [
    "BACKBONES",
    "Backbone",
    "BackboneSpec",
    "MobileNetV2",
    "MobileNetV3",
    "NASNetwork",
    "ResNetV1",
    "Xception",
    "checkpoint_scope",
    "get_backbone_spec",
]
