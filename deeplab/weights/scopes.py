"""Maps the original release's variable scopes onto the layers of a DeepLab model.

Every conv of the original lives in a scope such as ``MobilenetV2/expanded_conv_9/project``
(weights ``<scope>/weights`` or ``<scope>/depthwise_weights``, BatchNorm
``<scope>/BatchNorm/{gamma,beta,moving_mean,moving_variance}``, or ``<scope>/biases`` for
the logits). This module lists those scopes for a model built here, each with the Keras
conv (and BN) it corresponds to, so every importer shares one mapping.
"""

from __future__ import annotations

import dataclasses

import keras

from deeplab.backbones.backbone import checkpoint_scope
from deeplab.layers.atrous_conv2d import AtrousConv2D
from deeplab.layers.atrous_depthwise_conv2d import AtrousDepthwiseConv2D
from deeplab.layers.atrous_separable_conv import AtrousSeparableConv
from deeplab.layers.conv_bn_act import ConvBNAct
from deeplab.layers.multi_rate_logits import MultiRateLogits
from deeplab.layers.squeeze_excite import SqueezeExcite
from deeplab.model import LOGITS_LAYER

BN_PARAMS = ("gamma", "beta", "moving_mean", "moving_variance")


@dataclasses.dataclass(frozen=True)
class ScopeTarget:
    """One original scope and the Keras layers that hold its variables.

    Attributes:
        scope: the original's variable scope, e.g. ``aspp1_depthwise``.
        conv: the Keras conv layer (``AtrousConv2D`` or ``AtrousDepthwiseConv2D``).
        bn: its BatchNorm, or None when the conv has a bias instead (logits).
    """

    scope: str
    conv: keras.layers.Layer
    bn: keras.layers.Layer | None
    kernel_name: str = ""
    bn_scope: str = ""

    @property
    def depthwise(self) -> bool:
        return isinstance(self.conv, AtrousDepthwiseConv2D)

    @property
    def kernel_variable(self) -> str:
        """The kernel's variable name: ``<scope>/weights`` or ``<scope>/depthwise_weights``
        (slim's conv2d / depthwise), or ``kernel_name`` under the scope (the NAS cells'
        ``separable_5x5_1/pointwise_weights``)."""
        default = "depthwise_weights" if self.depthwise else "weights"
        return f"{self.scope}/{self.kernel_name or default}"

    def variables(self) -> dict:
        """``{original variable name: Keras variable}`` of this target."""
        names = {self.kernel_variable: self.conv.kernel}
        if self.bn is None:
            if getattr(self.conv, "bias", None) is not None:
                names[f"{self.scope}/biases"] = self.conv.bias
        else:
            for param in BN_PARAMS:
                names[f"{self.bn_prefix}/{param}"] = getattr(self.bn, param)
        return names

    @property
    def bn_prefix(self) -> str:
        """Where the BN's variables live: ``<scope>/BatchNorm`` (slim's normalizer_fn), or
        ``bn_scope`` for a BN the original called on its own (NAS: ``cell_0/beginning_bn``)."""
        return self.bn_scope or f"{self.scope}/BatchNorm"


def _unit_targets(layer, scope: str) -> list[ScopeTarget]:
    if isinstance(layer, ConvBNAct):
        return [ScopeTarget(scope, layer.conv, layer.bn)]
    if isinstance(layer, SqueezeExcite):  # <block>/squeeze_excite/Conv and Conv_1, biased
        return [ScopeTarget(f"{scope}/{unit.name}", unit.conv, None)
                for unit in (layer.squeeze, layer.excite)]
    if isinstance(layer, AtrousSeparableConv):
        return [
            ScopeTarget(f"{scope}_depthwise", layer.depthwise.conv, layer.depthwise.bn),
            ScopeTarget(f"{scope}_pointwise", layer.pointwise.conv, layer.pointwise.bn),
        ]
    return []


def scope_targets(model: keras.Model) -> dict[str, ScopeTarget]:
    """All original scopes of a :class:`deeplab.model.DeepLab` model, keyed by scope.

    Backbone scopes carry the original's prefix (``MobilenetV2/``, ``xception_65/``,
    ``resnet_v1_50/``); head scopes are bare (``aspp0``, ``image_pooling``,
    ``concat_projection``, ``decoder/feature_projection0``, ``logits/semantic``) as in the
    original graph. KSAC's shared kernel has no counterpart in the original.
    """
    targets: list[ScopeTarget] = []
    backbone = model.backbone
    if hasattr(backbone, "original_scope_targets"):  # a backbone that names its own (NAS)
        targets.extend(backbone.original_scope_targets())
    else:
        for layer in backbone.layers:
            scope = f"{backbone.checkpoint_prefix}/{checkpoint_scope(layer.name)}"
            targets.extend(_unit_targets(layer, scope))
    for layer in model.layers:
        if layer is backbone:
            continue
        if layer.name == LOGITS_LAYER and isinstance(layer, AtrousConv2D):
            targets.append(ScopeTarget("logits/semantic", layer, None))
            continue
        if layer.name == LOGITS_LAYER and isinstance(layer, MultiRateLogits):
            # One scope per rate: logits/semantic, logits/semantic_1, ...
            targets.extend(ScopeTarget(f"logits/{branch.name}", branch, None)
                           for branch in layer.branches)
            continue
        # Heads the original built inside a variable scope (decoder/, meta_architecture/).
        prefix = getattr(layer, "original_scope_prefix", "")
        for sublayer in layer._flatten_layers(include_self=False, recursive=False):
            targets.extend(_unit_targets(sublayer, prefix + sublayer.name))
    # Keyed by scope; a scope with two kernels (a NAS separable conv's depthwise and
    # pointwise weights) is keyed by each kernel's variable name.
    return {t.kernel_variable if t.kernel_name else t.scope: t for t in targets}


def original_variable_map(model: keras.Model) -> dict:
    """``{original variable name: Keras variable}`` for every layer the original has a
    scope for (the names a TF1 checkpoint of the model holds)."""
    names: dict = {}
    for target in scope_targets(model).values():
        names.update(target.variables())
    return names
