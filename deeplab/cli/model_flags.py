"""The original's model flags (``common.py``) plus ours, turned into a ModelConfig."""

from __future__ import annotations

from absl import flags

from deeplab.backbones.registry import BACKBONES
from deeplab.config import DUC_VARIANTS, HEADS, KSAC_MERGES, UPSAMPLINGS, ModelConfig


def define_model_flags(flag_values: flags.FlagValues = flags.FLAGS) -> None:
    """Defines the model flags with the original's names and defaults.

    List flags accept the original's repeated form (``--atrous_rates=6 --atrous_rates=12``)
    and the comma form (``--atrous_rates=6,12,18``).
    """
    f = flag_values
    flags.DEFINE_enum("model_variant", "mobilenet_v2", sorted(BACKBONES), "Backbone.",
                      flag_values=f)
    flags.DEFINE_integer("num_classes", 21, "Classes (the ignore label is not a class).",
                         flag_values=f)
    flags.DEFINE_integer("output_stride", 16, "Output stride of the encoder: 8, 16 or 32.",
                         flag_values=f)
    flags.DEFINE_multi_string(
        "atrous_rates", [],
        "ASPP rates, e.g. 6,12,18 at OS 16 (12,24,36 at OS 8); 'auto' picks rates from the "
        "crop size.", flag_values=f)
    flags.DEFINE_multi_string("multi_grid", [], "Unit rates of the last block, e.g. 1,2,4.",
                              flag_values=f)
    flags.DEFINE_multi_string("decoder_output_stride", [],
                              "DeepLabv3+ decoder end point strides, e.g. 4.", flag_values=f)
    flags.DEFINE_enum("head", "aspp", list(HEADS), "Encoder head.", flag_values=f)
    flags.DEFINE_enum("upsampling", "bilinear", list(UPSAMPLINGS), "Logits upsampling.",
                      flag_values=f)
    flags.DEFINE_enum("duc_variant", "conv", list(DUC_VARIANTS), "DUC head form.", flag_values=f)
    flags.DEFINE_float("depth_multiplier", 1.0, "MobileNet width multiplier.", flag_values=f)
    flags.DEFINE_integer("divisible_by", None, "MobileNet channel rounding.", flag_values=f)
    flags.DEFINE_boolean("aspp_with_separable_conv", True, "Separable ASPP branches.",
                         flag_values=f)
    flags.DEFINE_boolean("decoder_use_separable_conv", True, "Separable decoder convs.",
                         flag_values=f)
    flags.DEFINE_boolean("add_image_level_feature", True, "ASPP image pooling branch.",
                         flag_values=f)
    flags.DEFINE_boolean("aspp_with_concat_projection", True, "1x1 projection after ASPP.",
                         flag_values=f)
    flags.DEFINE_integer("aspp_convs_filters", 256, "ASPP depth.", flag_values=f)
    flags.DEFINE_integer("decoder_filters", 256, "Decoder depth.", flag_values=f)
    flags.DEFINE_multi_string("image_pooling_crop_size", [], "Image pooling kernel crop h,w.",
                              flag_values=f)
    flags.DEFINE_multi_string("image_pooling_stride", ["1,1"], "Image pooling stride h,w.",
                              flag_values=f)
    flags.DEFINE_boolean("ksac_shared_batch_norm", False, "KSAC: one BN for all rates.",
                         flag_values=f)
    flags.DEFINE_enum("ksac_merge", "concat", list(KSAC_MERGES), "KSAC branch merge.",
                      flag_values=f)
    flags.DEFINE_float("batch_norm_decay", None,
                       "Override every BN decay (default: the original's per component).",
                       flag_values=f)
    flags.DEFINE_boolean("use_bounded_activation", False, "ReLU6 (for quantisation).",
                         flag_values=f)


def parse_int_list(values, flag_name: str) -> tuple[int, ...]:
    """Flattens repeated and comma-separated values: ['6,12', '18'] → (6, 12, 18)."""
    items = [v.strip() for value in values or [] for v in str(value).split(",") if v.strip()]
    try:
        return tuple(int(v) for v in items)
    except ValueError:
        raise ValueError(f"--{flag_name} takes integers, e.g. --{flag_name}=6,12,18; got "
                         f"{values}.") from None


def parse_float_list(values, flag_name: str) -> tuple[float, ...]:
    """Flattens repeated and comma-separated numbers: ['0.5,0.75', '1'] → (0.5, 0.75, 1.0)."""
    items = [v.strip() for value in values or [] for v in str(value).split(",") if v.strip()]
    try:
        return tuple(float(v) for v in items)
    except ValueError:
        raise ValueError(f"--{flag_name} takes numbers, e.g. --{flag_name}=0.75,1.0; got "
                         f"{values}.") from None


def model_config_from_flags(values: flags.FlagValues, **overrides) -> ModelConfig:
    """Builds a ModelConfig from parsed flags (``overrides`` win, e.g. crop_size)."""
    rates = list(values.atrous_rates)
    atrous_rates = "auto" if rates == ["auto"] else parse_int_list(rates, "atrous_rates")
    fields = dict(
        model_variant=values.model_variant,
        num_classes=values.num_classes,
        output_stride=values.output_stride,
        atrous_rates=atrous_rates,
        multi_grid=parse_int_list(values.multi_grid, "multi_grid") or None,
        decoder_output_stride=parse_int_list(values.decoder_output_stride,
                                             "decoder_output_stride") or None,
        head=values.head,
        upsampling=values.upsampling,
        duc_variant=values.duc_variant,
        depth_multiplier=values.depth_multiplier,
        divisible_by=values.divisible_by,
        aspp_with_separable_conv=values.aspp_with_separable_conv,
        decoder_use_separable_conv=values.decoder_use_separable_conv,
        add_image_level_feature=values.add_image_level_feature,
        aspp_with_concat_projection=values.aspp_with_concat_projection,
        aspp_convs_filters=values.aspp_convs_filters,
        decoder_filters=values.decoder_filters,
        image_pooling_crop_size=parse_int_list(values.image_pooling_crop_size,
                                               "image_pooling_crop_size") or None,
        image_pooling_stride=parse_int_list(values.image_pooling_stride, "image_pooling_stride"),
        ksac_shared_batch_norm=values.ksac_shared_batch_norm,
        ksac_merge=values.ksac_merge,
        batch_norm_decay=values.batch_norm_decay,
        use_bounded_activation=values.use_bounded_activation,
    )
    fields.update(overrides)
    return ModelConfig(**fields)


def explicit_model_overrides(values: flags.FlagValues) -> dict:
    """ModelConfig fields for the model flags given on the command line.

    Binaries that load a saved model take its config and let these override it, so an
    export cannot silently differ from training (the original's export defaulted to output
    stride 8 where training used 16, a classic cause of wrong exports).
    """
    given = {name for name in _MODEL_FLAGS if values[name].present}
    if not given:
        return {}
    full = model_config_from_flags(values).to_dict()
    return {name: full[name] for name in given}


_MODEL_FLAGS = (
    "model_variant", "num_classes", "output_stride", "atrous_rates", "multi_grid",
    "decoder_output_stride", "head", "upsampling", "duc_variant", "depth_multiplier",
    "divisible_by", "aspp_with_separable_conv", "decoder_use_separable_conv",
    "add_image_level_feature", "aspp_with_concat_projection", "aspp_convs_filters",
    "decoder_filters", "image_pooling_crop_size", "image_pooling_stride",
    "ksac_shared_batch_norm", "ksac_merge", "batch_norm_decay", "use_bounded_activation",
)
