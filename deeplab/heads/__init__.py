"""Encoder heads and logits upsamplers, registered by name (``ModelConfig.head`` /
``ModelConfig.upsampling``): a new one registers itself and touches nothing else."""

from deeplab.heads.registry import (
    HEADS,
    UPSAMPLERS,
    HeadContext,
    HeadSpec,
    UpsamplerSpec,
    get_head_spec,
    get_upsampler_spec,
    register_head,
    register_upsampler,
)

__all__ = [
    "HEADS", "UPSAMPLERS", "HeadContext", "HeadSpec", "UpsamplerSpec", "get_head_spec",
    "get_upsampler_spec", "register_head", "register_upsampler",
]
