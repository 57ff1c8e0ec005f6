"""The DeepLab meta-architecture: backbone → ASPP/KSAC → decoder → logits → upsampling."""

from __future__ import annotations

import keras

from deeplab.config import ModelConfig
from deeplab.layers.aspp import ASPP
from deeplab.layers.atrous_conv2d import AtrousConv2D
from deeplab.layers.conv_bn_act import l2_regularizer
from deeplab.layers.decoder import Decoder
from deeplab.layers.duc import DUC
from deeplab.layers.ksac import KSAC
from deeplab.layers.preprocess import Preprocess
from deeplab.layers.resize_like import ResizeLike
from deeplab.ops import scale_dimension

# The original's head BN settings (model.py hard-codes decay 0.9997, epsilon 1e-5).
HEAD_BATCH_NORM_DECAY = 0.9997
HEAD_BATCH_NORM_EPSILON = 1e-5
LOGITS_LAYER = "logits.semantic"


@keras.saving.register_keras_serializable(package="deeplab")
class DeepLab(keras.Model):
    """DeepLabv3 / DeepLabv3+ (with KSAC and DUC options) from a :class:`ModelConfig`.

    Input: images of any height and width, RGB, 0–255 (float or uint8); the backbone's
    preprocessing runs inside the model. Output: float32 logits at the input resolution.
    :meth:`head_logits_model` gives the logits at the head's stride (for training with
    ``upsample_logits=False``).

    Args:
        config: a :class:`ModelConfig` (or its dict form).
        **kwargs: ``keras.Model`` arguments (name, ...).

    Example:
        >>> model = DeepLab(ModelConfig("mobilenet_v2", num_classes=21))
        >>> model(keras.ops.zeros((1, 65, 65, 3))).shape
        (1, 65, 65, 21)

    Reference:
        Chen et al., "Rethinking Atrous Convolution for Semantic Image Segmentation"
        (arXiv 1706.05587) and "Encoder-Decoder with Atrous Separable Convolution for
        Semantic Image Segmentation" (ECCV 2018).
    """

    def __init__(self, config: ModelConfig | dict | None = None, **kwargs):
        if config is None:
            config = ModelConfig()
        elif isinstance(config, dict):
            config = ModelConfig.from_dict(config)
        spec = config.backbone_spec
        weight_decay = spec.weight_decay if config.weight_decay is None else config.weight_decay
        bn = dict(
            update_batch_norm_statistics=config.fine_tune_batch_norm,
            synchronized_batch_norm=config.sync_batch_norm,
        )
        head_bn = dict(
            batch_norm_momentum=_decay(config, HEAD_BATCH_NORM_DECAY),
            batch_norm_epsilon=HEAD_BATCH_NORM_EPSILON,
            **bn,
        )
        activation = "relu6" if config.use_bounded_activation else "relu"

        backbone_options = dict(
            output_stride=config.output_stride,
            weight_decay=weight_decay,
            batch_norm_momentum=_decay(config, spec.batch_norm_momentum),
            batch_norm_epsilon=spec.batch_norm_epsilon,
            **bn,
        )
        if config.model_variant == "mobilenet_v2":
            backbone_options.update(
                depth_multiplier=config.depth_multiplier,
                divisible_by=config.divisible_by,
                final_layer=config.mobilenet_final_layer,
            )
        else:
            backbone_options.update(
                multi_grid=config.multi_grid, use_bounded_activation=config.use_bounded_activation
            )
            if config.hdc_unit_rates:
                backbone_options["unit_rates"] = config.hdc_unit_rates
        backbone = spec.build(**backbone_options)

        images = keras.Input(shape=(None, None, 3), name="images")
        features = backbone(Preprocess(spec.preprocessing, name="preprocess")(images))
        x = features["features"]

        if config.head != "none":
            head_class = KSAC if config.head == "ksac" else ASPP
            head_options = {}
            if config.head == "ksac":
                head_options = dict(
                    shared_batch_norm=config.ksac_shared_batch_norm, merge=config.ksac_merge
                )
            x = head_class(
                config.aspp_convs_filters,
                atrous_rates=config.atrous_rates,
                separable=config.aspp_with_separable_conv,
                image_pooling=config.add_image_level_feature,
                pooling_size=_pooling_size(config),
                pooling_stride=config.image_pooling_stride,
                concat_projection=config.aspp_with_concat_projection,
                activation=activation,
                weight_decay=weight_decay,
                name=config.head,
                **head_bn,
                **head_options,
            )(x)

        if config.decoder_output_stride:
            missing = [s for s in config.decoder_output_stride if f"stride_{s}" not in features]
            if missing:
                raise ValueError(
                    f"ModelConfig.decoder_output_stride: this {config.model_variant} backbone "
                    f"has no end point at stride {missing} (mobilenet_final_layer too small?)."
                )
            x = Decoder(
                num_levels=len(config.decoder_output_stride),
                filters=config.decoder_filters,
                separable=config.decoder_use_separable_conv,
                activation=activation,
                weight_decay=weight_decay,
                name="decoder",
                **head_bn,
            )([x] + [features[f"stride_{s}"] for s in config.decoder_output_stride])

        if config.upsampling == "duc":
            logits = DUC(
                config.num_classes,
                upsample_factor=config.logits_stride,
                variant=config.duc_variant,
                weight_decay=weight_decay,
                name=LOGITS_LAYER,
            )(x)
            method = "crop"
        else:
            logits = AtrousConv2D(
                config.num_classes,
                1,
                use_bias=True,
                kernel_initializer=keras.initializers.TruncatedNormal(stddev=0.01),
                kernel_regularizer=l2_regularizer(weight_decay),
                name=LOGITS_LAYER,
            )(x)
            method = "bilinear"
        # float32 logits under mixed precision: the loss and argmax need the range.
        outputs = ResizeLike(method, dtype="float32", name="upsample_logits")([logits, images])

        kwargs.setdefault("name", "deeplab")
        super().__init__(inputs=images, outputs=outputs, **kwargs)
        self.config = config
        self.backbone = backbone

    def head_logits_model(self) -> keras.Model:
        """A model sharing these weights that outputs the logits at the head's stride."""
        return keras.Model(self.input, self.get_layer(LOGITS_LAYER).output)

    def get_config(self):
        return {"name": self.name, "trainable": self.trainable, "config": self.config.to_dict()}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def _decay(config: ModelConfig, default: float) -> float:
    return default if config.batch_norm_decay is None else config.batch_norm_decay


def _pooling_size(config: ModelConfig):
    """The original's avg-pool kernel: ``scale_dimension(pool_crop, 1 / OS)``, else global."""
    pool_crop = config.image_pooling_crop_size or config.crop_size
    if pool_crop is None:
        return None
    stride = config.output_stride or 32
    return tuple(scale_dimension(d, 1.0 / stride) for d in pool_crop)


def build_deeplab(config: ModelConfig | None = None, **fields) -> DeepLab:
    """Builds a DeepLab model from a config, or from ModelConfig fields as keywords.

    Example:
        >>> model = build_deeplab(model_variant="xception_65", atrous_rates=(6, 12, 18),
        ...                       decoder_output_stride=(4,))
    """
    if config is not None and fields:
        raise ValueError("build_deeplab takes a ModelConfig or keyword fields, not both.")
    return DeepLab(config or ModelConfig(**fields))
