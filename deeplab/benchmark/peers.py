"""Peer models for the same-run comparison (peers.md §3): keras-hub's DeepLabV3."""

from __future__ import annotations

from deeplab.benchmark.forward import dtype_policy


def keras_hub_deeplab_v3_plus(dtype: str = "float32", num_classes: int = 21):
    """keras-hub DeepLabV3 with a ResNet-50 encoder and the low-level (v3+) path, random weights.

    The encoder is ResNet-50 v1 built from its config (``resnet_50_imagenet``'s shape; no
    download); ASPP (6, 12, 18) reads P5 (stride 32: keras-hub has no dilated encoder), the
    low-level path P2, as in keras-hub's own example. 39,196,032 parameters.

    Raises:
        ImportError: keras-hub is not installed (``pip install .[bench]``).
    """
    import keras_hub

    with dtype_policy(dtype):
        encoder = keras_hub.models.ResNetBackbone(
            input_conv_filters=[64], input_conv_kernel_sizes=[7],
            stackwise_num_filters=[64, 128, 256, 512], stackwise_num_blocks=[3, 4, 6, 3],
            stackwise_num_strides=[1, 2, 2, 2], block_type="bottleneck_block",
        )
        backbone = keras_hub.models.DeepLabV3Backbone(
            image_encoder=encoder, spatial_pyramid_pooling_key="P5", upsampling_size=8,
            dilation_rates=[6, 12, 18], low_level_feature_key="P2",
        )
        return keras_hub.models.DeepLabV3ImageSegmenter(backbone=backbone,
                                                        num_classes=num_classes)
