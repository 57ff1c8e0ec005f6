"""The DeepLab meta-architecture: backbone → ASPP/KSAC → decoder → logits → upsampling."""

from __future__ import annotations

import keras

from deeplab.config import ModelConfig
from deeplab.heads.registry import HeadContext
from deeplab.layers.decoder import Decoder
from deeplab.layers.norm_options import NormOptions
from deeplab.layers.preprocess import Preprocess
from deeplab.layers.pyramid_merge import PyramidMerge
from deeplab.layers.resize_like import ResizeLike
from deeplab.ops import scale_dimension
from deeplab.quantization import prepare_model

# The original's head BN settings (model.py hard-codes decay 0.9997, epsilon 1e-5).
HEAD_BATCH_NORM_DECAY = 0.9997
HEAD_BATCH_NORM_EPSILON = 1e-5
LOGITS_LAYER = "logits.semantic"
DECODER_LAYER = "decoder"


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
        bn = dict(update_statistics=config.fine_tune_batch_norm,
                  synchronized=config.sync_batch_norm)
        context = HeadContext(
            weight_decay=weight_decay,
            activation="relu6" if config.use_bounded_activation else "relu",
            norm=NormOptions(momentum=_decay(config, HEAD_BATCH_NORM_DECAY),
                             epsilon=HEAD_BATCH_NORM_EPSILON, **bn),
            pooling_size=_pooling_size(config),
        )
        backbone = spec.build(
            output_stride=config.output_stride, weight_decay=weight_decay,
            norm=NormOptions(momentum=_decay(config, spec.batch_norm_momentum),
                             epsilon=spec.batch_norm_epsilon, **bn),
            **spec.config_options(config))

        images = keras.Input(shape=(None, None, 3), name="images")
        preprocessed = Preprocess(spec.preprocessing, name="preprocess")(images)
        head = config.head_spec
        head_layer = head.build(config, context) if head.build is not None else None
        decoder = None
        if config.decoder_output_stride:
            decoder = Decoder(
                num_levels=len(config.decoder_output_stride),
                filters=config.decoder_filters,
                separable=config.decoder_use_separable_conv,
                sum_merge=config.decoder_use_sum_merge,
                output_is_logits=config.decoder_output_is_logits,
                activation=context.activation,
                weight_decay=weight_decay,
                name=DECODER_LAYER,
                norm=context.norm,
            )
        upsampler = config.upsampler_spec
        # LR-ASPP: the decoder's sum is the logits (no logits/semantic conv).
        logits_layer = (None if config.decoder_output_is_logits
                        else upsampler.build(config, context, LOGITS_LAYER))

        def logits_at(x, pooling_size=None):
            """One pass of the network (the layers are shared by every pyramid scale)."""
            features = backbone(x)
            y = features["features"]
            if head_layer is not None:
                # Only a head with crop-sized image pooling (ASPP, KSAC) rescales it.
                scaled = pooling_size and getattr(head_layer, "pooling_size", None)
                y = head_layer(y, **({"pooling_size": pooling_size} if scaled else {}))
            if decoder is not None:
                missing = [s for s in config.decoder_output_stride
                           if f"stride_{s}" not in features]
                if missing:
                    raise ValueError(
                        f"ModelConfig.decoder_output_stride: this {config.model_variant} "
                        f"backbone has no end point at stride {missing} "
                        "(mobilenet_final_layer too small?).")
                y = decoder([y] + [features[f"stride_{s}"]
                                   for s in config.decoder_output_stride])
            return y if logits_layer is None else logits_layer(y)

        scales = config.image_pyramid or (1.0,)
        if scales == (1.0,):
            head_logits = logits_at(preprocessed)
            scale_logits = []
        else:
            head_logits, scale_logits = _pyramid_logits(
                config, preprocessed, images, logits_at, scales)
        # float32 logits under mixed precision: the loss and argmax need the range.
        outputs = ResizeLike(upsampler.resize, dtype="float32",
                             name="upsample_logits")([head_logits, images])

        kwargs.setdefault("name", "deeplab")
        super().__init__(inputs=images, outputs=outputs, **kwargs)
        self.config = config
        self.backbone = backbone
        # Symbolic tensors of the graph above, for the models sharing these weights.
        self._logits_tensors = {"head": head_logits, "scales": tuple(scale_logits)}
        self._logits_at = logits_at
        self._scaled_models = {}
        if config.quantize_delay_step >= 0:
            prepare_model(self)

    def head_logits_model(self) -> keras.Model:
        """A model sharing these weights that outputs the logits at the head's stride
        (the merged logits with an image pyramid)."""
        return keras.Model(self.input, self._logits_tensors["head"])

    def training_logits_model(self) -> keras.Model:
        """A model sharing these weights whose outputs are the logits the original's
        training loss is taken on: the (merged) head logits and, with an image pyramid of
        several scales, each scale's logits (``add_softmax_cross_entropy_loss_for_each_scale``)."""
        tensors = self._logits_tensors
        return keras.Model(self.input, [tensors["head"], *tensors["scales"]])

    def scaled_input_model(self, scale: float) -> keras.Model:
        """A model sharing these weights for images resized by ``scale`` from the crop:
        its image pooling is sized from the scaled crop, as the original's
        ``multi_scale_logits`` runs each scale (multi-scale inference included). The
        model itself where that changes nothing (scale 1, global image pooling).
        """
        pooling = _pooling_size(self.config, scale)
        if pooling == _pooling_size(self.config) or self.config.image_pyramid:
            return self
        if scale not in self._scaled_models:
            images = keras.Input(shape=(None, None, 3), name="scaled_images")
            logits = self._logits_at(self.get_layer("preprocess")(images), pooling)
            self._scaled_models[scale] = keras.Model(
                images, self.get_layer("upsample_logits")([logits, images]))
        return self._scaled_models[scale]

    def last_layer_names(self, logits_only: bool = False) -> tuple[str, ...]:
        """The layers the original counted as "last layers" (``get_extra_layer_scopes``):
        the logits, and unless ``logits_only`` the head (if its spec says so) and the
        decoder. ``--last_layer_gradient_multiplier`` and ``--initialize_last_layer``
        apply to their variables."""
        names = [LOGITS_LAYER]
        if not logits_only:
            if self.config.head_spec.build is not None and self.config.head_spec.last_layers:
                names.append(self.config.head)
            if self.config.decoder_output_stride:
                names.append(DECODER_LAYER)
        return tuple(names)

    def last_layer_prefixes(self, logits_only: bool = False) -> tuple[str, ...]:
        """Variable-path prefixes (``"<layer>/"``) of :meth:`last_layer_names`."""
        return tuple(f"{name}/" for name in self.last_layer_names(logits_only))

    def last_layer_original_scopes(self, logits_only: bool = False) -> tuple[str, ...]:
        """The original's checkpoint scopes of the last layers (for TF1 checkpoints)."""
        scopes = ["logits"]
        if not logits_only:
            if self.config.head_spec.last_layers:
                scopes += self.config.head_spec.original_scopes
            if self.config.decoder_output_stride:
                scopes.append("decoder")
        return tuple(scopes)

    def get_config(self):
        return {"name": self.name, "trainable": self.trainable, "config": self.config.to_dict()}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def _decay(config: ModelConfig, default: float) -> float:
    return default if config.batch_norm_decay is None else config.batch_norm_decay


def _pooling_size(config: ModelConfig, image_scale: float = 1.0):
    """The original's avg-pool kernel: ``scale_dimension(pool_crop, 1 / OS)``, else global;
    in an image pyramid the crop is scaled first, as the original's ``multi_scale_logits``."""
    pool_crop = config.image_pooling_crop_size or config.crop_size
    if pool_crop is None:
        return None
    stride = config.output_stride or 32
    return tuple(scale_dimension(scale_dimension(d, image_scale), 1.0 / stride)
                 for d in pool_crop)


def _pyramid_logits(config: ModelConfig, preprocessed, images, logits_at, scales):
    """The original's ``multi_scale_logits``: the network at each scale (bilinear, align
    corners), each scale's logits resized to the largest scale's logits size and merged
    (max or mean). Returns (merged, per-scale logits; empty for a single scale)."""
    logits_scale = max(1.0, max(scales)) / config.logits_stride
    per_scale = []
    for scale in scales:
        if scale == 1.0:
            x, pooling = preprocessed, None
        else:
            x = ResizeLike(scale=scale, name=f"pyramid_input_{scale:.2f}")(
                [preprocessed, preprocessed])
            pooling = _pooling_size(config, scale)
        logits = logits_at(x, pooling)
        per_scale.append(ResizeLike(scale=logits_scale, name=f"logits_{scale:.2f}")(
            [logits, images]))
    if len(per_scale) == 1:
        return per_scale[0], []
    merged = PyramidMerge(config.merge_method, name="merged_logits")(per_scale)
    return merged, per_scale


def build_deeplab(config: ModelConfig | None = None, **fields) -> DeepLab:
    """Builds a DeepLab model from a config, or from ModelConfig fields as keywords.

    Example:
        >>> model = build_deeplab(model_variant="xception_65", atrous_rates=(6, 12, 18),
        ...                       decoder_output_stride=(4,))
    """
    if config is not None and fields:
        raise ValueError("build_deeplab takes a ModelConfig or keyword fields, not both.")
    return DeepLab(config or ModelConfig(**fields))
