"""The model configuration: the original's ModelOptions, without global flags."""

from __future__ import annotations

import dataclasses
import logging
import numbers
import os
import types
import typing

from deeplab.backbones.backbone import ALLOWED_OUTPUT_STRIDES
from deeplab.backbones.registry import BACKBONES, get_backbone_spec
from deeplab.heads.registry import HEADS, UPSAMPLERS, get_head_spec, get_upsampler_spec
from deeplab.layers.pyramid_merge import METHODS as MERGE_METHODS

# The project's logger (deeplab.cli.console shows its INFO lines; other libraries' are hidden).
logger = logging.getLogger(__name__)

DUC_VARIANTS = ("conv", "aspp")
KSAC_MERGES = ("concat", "sum")
# The original's flags of the NAS backbones: another backbone refuses a value other than
# the default (the original ignored them silently).
NAS_FLAGS = ("nas_stem_output_num_conv_filters", "nas_use_classification_head",
             "nas_remove_os32_stride")


def _pair(value, field):
    if value is None:
        return None
    if isinstance(value, int):
        value = (value, value)
    value = tuple(int(v) for v in value)
    if len(value) != 2 or min(value) < 1:
        raise ValueError(f"ModelConfig.{field}: must be two positive ints (h, w), got {value}.")
    return value


def _ints(value):
    return None if value is None else tuple(int(v) for v in value)


def _floats(value):
    return None if value is None else tuple(float(v) for v in value)


def _type_matches(value, expected) -> bool:
    """Whether ``value`` is of the annotated type ``expected``: ints for ``int`` (numpy's
    too, never a bool), any real for ``float``, lists for tuples (JSON has no tuples), and a
    single int for a fixed-size tuple of ints (one value for both sides, as ``crop_size=33``)."""
    origin, args = typing.get_origin(expected), typing.get_args(expected)
    if origin in (typing.Union, types.UnionType):
        return any(_type_matches(value, option) for option in args)
    if expected is type(None):
        return value is None
    if origin is typing.Literal:
        return any(value == option and type(value) is type(option) for option in args)
    if expected is bool:
        return isinstance(value, bool) or type(value).__name__ == "bool_"
    if expected is int:
        return isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if expected is float:
        return isinstance(value, numbers.Real) and not isinstance(value, bool)
    if expected is str:
        return isinstance(value, str)
    if origin is tuple:
        if not isinstance(value, (tuple, list)):
            return (Ellipsis not in args and len(set(args)) == 1
                    and _type_matches(value, args[0]))
        element_types = [args[0]] * len(value) if Ellipsis in args else args
        return all(_type_matches(v, t) for v, t in zip(value, element_types))
    if origin is not None:
        return isinstance(value, origin)
    return isinstance(value, expected) if isinstance(expected, type) else True


def _describe_type(expected) -> str:
    origin, args = typing.get_origin(expected), typing.get_args(expected)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe_type(option) for option in args)
    if origin is typing.Literal:
        return " or ".join(repr(option) for option in args)
    if origin is tuple:
        if Ellipsis in args:
            return f"a tuple of {_describe_type(args[0]).split(' ', 1)[-1]}s"
        return f"a tuple of {len(args)} {_describe_type(args[0]).split(' ', 1)[-1]}s"
    names = {type(None): "None", bool: "True or False", int: "an int", float: "a number",
             str: "a string", dict: "a dict", list: "a list"}
    if expected in names:
        return names[expected]
    return f"a {getattr(origin or expected, '__name__', str(expected))}"


def check_field_types(instance, owner: str) -> None:
    """Checks every field of a config dataclass against its annotated type, so a wrong
    value is named by its field (``ModelConfig.num_classes: must be an int, got '6'
    (str)``) instead of failing later inside the model; a path given as a ``Path`` to a
    string field is kept as its string.

    Args:
        instance: the dataclass (``ModelConfig``, ``TrainConfig``, ...).
        owner: how messages name the fields' owner (``ModelConfig``).

    Raises:
        ValueError: naming the first field whose value is not of its type.
    """
    hints = typing.get_type_hints(type(instance))
    for field in dataclasses.fields(instance):
        value, expected = getattr(instance, field.name), hints[field.name]
        if isinstance(value, os.PathLike) and _type_matches("", expected):
            object.__setattr__(instance, field.name, os.fspath(value))
            continue
        if not _type_matches(value, expected):
            raise ValueError(f"{owner}.{field.name}: must be {_describe_type(expected)}, got "
                             f"{value!r} ({type(value).__name__}).")


def _backbone_names():
    return sorted(BACKBONES)


def _flag(default, help_text: str, kind: str, choices=None):
    """A field that is also a command-line flag of the same name (``deeplab.cli.model_flags``
    defines them all from this metadata): its help, its kind ("enum", "int", "float",
    "bool", "string", "ints" / "floats" for comma / repeated lists) and, for enums, a
    callable giving the choices."""
    return dataclasses.field(default=default, metadata={
        "flag_help": help_text, "flag_kind": kind, "flag_choices": choices})


def flag_fields() -> list[dataclasses.Field]:
    """The ModelConfig fields that are command-line flags."""
    return [f for f in dataclasses.fields(ModelConfig) if "flag_help" in f.metadata]


@dataclasses.dataclass
class ModelConfig:
    """Everything that shapes a DeepLab model. Binaries turn flags into this.

    Field names follow the original's flags (``common.py``) where one exists.

    Attributes:
        model_variant: backbone name from the registry (``deeplab.backbones.BACKBONES``).
        num_classes: output classes (the ignore label is not a class).
        output_stride: 8, 16, 32 or None (no atrous conv, nominal stride 32).
        atrous_rates: ASPP/KSAC rates, e.g. (6, 12, 18) at OS 16; () or None for no
            atrous branches (the MobileNetV2 default); "auto" picks rates from
            ``crop_size`` (resolution-aware geometric rule, needs crop_size).
        multi_grid: unit rates of the last block (Xception/ResNet), e.g. (1, 2, 4).
        head: "aspp", "ksac" (shared-kernel ASPP), "dpc" (Dense Prediction Cell) or "none"
            (logits on backbone features).
        decoder_output_stride: DeepLabv3+ decoder end point strides, descending, e.g. (4,).
        upsampling: "bilinear" (align-corners resize of the logits) or "duc".
        duc_variant: "conv" (one conv to d²·L) or "aspp" (sum of 3x3 at 6/12/18/24).
        depth_multiplier, divisible_by: MobileNet width and channel rounding.
        mobilenet_final_layer: last MobileNetV2 layer (18 in DeepLab).
        aspp_with_separable_conv: separable 3x3 branches in ASPP/KSAC.
        decoder_use_separable_conv: separable 3x3 convs in the decoder.
        add_image_level_feature: the image-pooling branch.
        aspp_with_concat_projection: 1x1 projection + dropout after the concat.
        aspp_convs_filters, decoder_filters: head widths (256).
        crop_size: (h, w) the model is trained at; sizes the image-pooling kernel as in
            the original. None: image pooling is a true global mean.
        image_pooling_crop_size, image_pooling_stride: the original's image-pooling
            kernel and stride overrides.
        ksac_shared_batch_norm, ksac_merge: KSAC options.
        hdc_unit_rates: ResNet HDC schedule, e.g. {"block4": (5, 9, 17)}.
        weight_decay: None uses the backbone family's value (4e-5, ResNet 1e-4).
        batch_norm_decay: None keeps each component's original decay (heads 0.9997,
            Xception 0.9997, MobileNetV2 0.997, ResNet 0.95); a value overrides all.
        fine_tune_batch_norm: False freezes BN statistics (gamma/beta still train).
        sync_batch_norm: synchronise BN statistics across replicas.
        use_bounded_activation: ReLU6 everywhere (for quantisation).
        aspp_with_batch_norm: False is the original's DeepLabv2-style head: no ASPP, one
            logits conv per atrous rate on the backbone features, summed.
        logits_kernel_size: kernel of those logits convs (1 unless
            ``aspp_with_batch_norm`` is False and there are atrous rates).
        image_pyramid: input scales of the original's multi-scale logits (training and
            single-scale inference): the model runs at each scale, the logits are resized
            to the largest scale's logits size and merged by ``merge_method``.
        merge_method: "max" or "avg" over the pyramid.
        prediction_with_upsampled_logits: False takes the argmax at the logits' stride
            and upsamples the labels (nearest), as the original's flag.
        quantize_delay_step: >= 0 makes the model quantization-aware
            (:mod:`deeplab.quantization`): training simulates int8 inference from that
            step on; inference (eval, export) simulates it always. -1: float.
        aspp_with_squeeze_and_excitation, image_se_uses_qsigmoid, decoder_use_sum_merge,
            decoder_output_is_logits: MobileNetV3's LR-ASPP head as the original's flags
            express it (see :class:`deeplab.layers.ASPP` and :class:`deeplab.layers.Decoder`).
        dense_prediction_cell_json: the DPC head's cell (the original's JSON); giving it
            selects ``head="dpc"`` as the original's flag did.
        dense_prediction_cell: the cell's operations, read from that JSON when the config
            is made and kept in it, so a saved config rebuilds the model without the file.
        nas_stem_output_num_conv_filters, nas_use_classification_head,
            nas_remove_os32_stride: the NAS backbones' options (``nas_pnasnet``,
            ``nas_hnasnet``; :class:`deeplab.backbones.nas.NASNetwork`).
    """

    model_variant: str = _flag("mobilenet_v2", "Backbone.", "enum", choices=_backbone_names)
    num_classes: int = _flag(21, "Classes (the ignore label is not a class).", "int")
    output_stride: int | None = _flag(16, "Output stride of the encoder: 8, 16 or 32.", "int")
    atrous_rates: tuple[int, ...] | typing.Literal["auto"] | None = _flag(
        None, "ASPP rates, e.g. 6,12,18 at OS 16 (12,24,36 at OS 8); 'auto' picks rates from "
        "the crop size.", "ints")
    multi_grid: tuple[int, ...] | None = _flag(None, "Unit rates of the last block, e.g. 1,2,4.",
                                               "ints")
    head: str = _flag("aspp", "Encoder head (registered in deeplab.heads).", "enum",
                      choices=lambda: sorted(HEADS))
    decoder_output_stride: tuple[int, ...] | int | None = _flag(
        None, "DeepLabv3+ decoder end point strides, e.g. 4.", "ints")
    upsampling: str = _flag("bilinear", "Logits upsampling (registered in deeplab.heads).",
                            "enum", choices=lambda: sorted(UPSAMPLERS))
    duc_variant: str = _flag("conv", "DUC head form.", "enum", choices=lambda: DUC_VARIANTS)
    depth_multiplier: float = _flag(1.0, "MobileNet width multiplier.", "float")
    divisible_by: int | None = _flag(None, "MobileNet channel rounding.", "int")
    mobilenet_final_layer: int = 18
    aspp_with_separable_conv: bool = _flag(True, "Separable ASPP branches.", "bool")
    decoder_use_separable_conv: bool = _flag(True, "Separable decoder convs.", "bool")
    add_image_level_feature: bool = _flag(True, "ASPP image pooling branch.", "bool")
    aspp_with_concat_projection: bool = _flag(True, "1x1 projection after ASPP.", "bool")
    aspp_convs_filters: int = _flag(256, "ASPP depth.", "int")
    decoder_filters: int = _flag(256, "Decoder depth.", "int")
    crop_size: tuple[int, int] | None = None
    image_pooling_crop_size: tuple[int, int] | None = _flag(
        None, "Image pooling kernel crop h,w.", "ints")
    image_pooling_stride: tuple[int, int] = _flag((1, 1), "Image pooling stride h,w.", "ints")
    ksac_shared_batch_norm: bool = _flag(False, "KSAC: one BN for all rates.", "bool")
    ksac_merge: str = _flag("concat", "KSAC branch merge.", "enum", choices=lambda: KSAC_MERGES)
    hdc_unit_rates: dict | None = None
    weight_decay: float | None = None
    batch_norm_decay: float | None = _flag(
        None, "Override every BN decay (default: the original's per component).", "float")
    fine_tune_batch_norm: bool = True
    sync_batch_norm: bool = False
    use_bounded_activation: bool = _flag(False, "ReLU6 (for quantisation).", "bool")
    aspp_with_batch_norm: bool = _flag(
        True, "False: no ASPP; the original's DeepLabv2-style head (one logits conv of "
        "--logits_kernel_size per atrous rate on the backbone features, summed).", "bool")
    logits_kernel_size: int = _flag(
        1, "Logits conv kernel; must be 1 unless --noaspp_with_batch_norm with atrous "
        "rates.", "int")
    image_pyramid: tuple[float, ...] | None = _flag(
        None, "Input scales whose logits are merged (training and single-scale "
        "inference), e.g. 0.5,1.0,1.5.", "floats")
    merge_method: str = _flag("max", "How the image pyramid's logits are merged.", "enum",
                              choices=lambda: MERGE_METHODS)
    prediction_with_upsampled_logits: bool = _flag(
        True, "True: upsample the logits (bilinear), then argmax. False: argmax at the "
        "logits' stride, then nearest upsampling (single-scale inference).", "bool")
    quantize_delay_step: int = _flag(
        -1, "Quantization-aware training from this step on (BN folded, int8 weights and "
        "activations simulated); eval, vis and export then run the int8 model. -1: float.",
        "int")
    dense_prediction_cell_json: str = _flag(
        "", "Dense Prediction Cell JSON in the original's format; selects the DPC head "
        "(--head=dpc without it uses the packaged Cityscapes cell).", "string")
    dense_prediction_cell: list | None = None
    nas_stem_output_num_conv_filters: int = _flag(
        20, "NAS backbones: filters of each cell state at the stem's scale.", "int")
    nas_use_classification_head: bool = _flag(
        False, "NAS backbones: convs down to stride 32 (atrous past --output_stride) and a "
        "1x1 conv to 2048 after the cells.", "bool")
    nas_remove_os32_stride: bool = _flag(
        False, "NAS backbones: the stride-32 cells stay at stride 16.", "bool")
    aspp_with_squeeze_and_excitation: bool = _flag(
        False, "LR-ASPP: the image pooling branch is a sigmoid gate on the ASPP output.",
        "bool")
    image_se_uses_qsigmoid: bool = _flag(
        False, "LR-ASPP: the gate is a hard sigmoid, relu6(x + 3) * 0.16667.", "bool")
    decoder_use_sum_merge: bool = _flag(
        False, "LR-ASPP: the decoder adds a conv of the encoder features to the projected "
        "low-level features.", "bool")
    decoder_output_is_logits: bool = _flag(
        False, "LR-ASPP: the sum-merge decoder's linear 1x1 convs give the logits "
        "(--decoder_filters = classes).", "bool")

    def __post_init__(self):
        check_field_types(self, "ModelConfig")
        self.crop_size = _pair(self.crop_size, "crop_size")
        self.image_pooling_crop_size = _pair(
            self.image_pooling_crop_size, "image_pooling_crop_size"
        )
        self.image_pooling_stride = _pair(self.image_pooling_stride, "image_pooling_stride")
        self.multi_grid = _ints(self.multi_grid) or None
        self.image_pyramid = _floats(self.image_pyramid) or None
        if self.dense_prediction_cell_json and self.head == "aspp":
            self.head = "dpc"  # the original: a DPC JSON replaces ASPP
        if self.head == "dpc" and self.dense_prediction_cell is None:
            from deeplab.heads.registry import read_dense_prediction_cell

            self.dense_prediction_cell = read_dense_prediction_cell(self)
        if self.decoder_output_stride is not None and not isinstance(
            self.decoder_output_stride, (tuple, list)
        ):
            self.decoder_output_stride = (self.decoder_output_stride,)
        self.decoder_output_stride = _ints(self.decoder_output_stride) or None
        if self.hdc_unit_rates:
            self.hdc_unit_rates = {k: _ints(v) for k, v in self.hdc_unit_rates.items()}
        if self.atrous_rates == "auto":
            self.atrous_rates = self._auto_atrous_rates()
        else:
            self.atrous_rates = _ints(self.atrous_rates) or ()
        self.validate()
        if self.crop_size and self.atrous_rates:
            from deeplab.analysis.atrous_rates import degenerate_rate_warnings

            for message in degenerate_rate_warnings(
                self.atrous_rates, self.crop_size, self.output_stride or 32
            ):
                logger.warning("ModelConfig: %s", message)

    def _auto_atrous_rates(self) -> tuple[int, ...]:
        from deeplab.analysis.atrous_rates import geometric_atrous_rates

        if self.crop_size is None:
            raise ValueError(
                "ModelConfig.atrous_rates='auto' needs crop_size: the rates are chosen from "
                "the input size (set crop_size, e.g. (513, 513))."
            )
        rates = geometric_atrous_rates(self.crop_size, self.output_stride or 32)
        logger.info("ModelConfig: atrous_rates='auto' gives %s for crop %s at output stride "
                    "%s (geometric rule).", rates, self.crop_size, self.output_stride)
        return rates

    @property
    def backbone_spec(self):
        return get_backbone_spec(self.model_variant)

    @property
    def head_spec(self):
        """The head that runs: ``head``'s, or none when ``aspp_with_batch_norm`` is False
        (the atrous rates then belong to the multi-rate logits)."""
        return get_head_spec(self.head if self.aspp_with_batch_norm else "none")

    @property
    def upsampler_spec(self):
        return get_upsampler_spec(self.upsampling)

    @property
    def logits_stride(self) -> int:
        """Stride of the logits before upsampling (decoder stride if any)."""
        if self.decoder_output_stride:
            return min(self.decoder_output_stride)
        return self.output_stride or 32

    def validate(self) -> None:
        """Raises ValueError naming the field and what is allowed."""

        def fail(field, message):
            raise ValueError(f"ModelConfig.{field}: {message}")

        if self.model_variant not in BACKBONES:
            fail("model_variant",
                 f"unknown {self.model_variant!r}; choose one of {sorted(BACKBONES)}.")
        spec = self.backbone_spec
        if self.output_stride not in ALLOWED_OUTPUT_STRIDES:
            fail("output_stride",
                 f"must be one of {ALLOWED_OUTPUT_STRIDES}, got {self.output_stride!r}.")
        if self.num_classes < 1:
            fail("num_classes", f"must be >= 1, got {self.num_classes}.")
        get_head_spec(self.head)
        if self.aspp_with_batch_norm:
            self.head_spec.validate(self)
        if any(r < 1 for r in self.atrous_rates):
            fail("atrous_rates", f"rates must be positive, got {self.atrous_rates}.")
        get_upsampler_spec(self.upsampling)
        if self.duc_variant not in DUC_VARIANTS:
            fail("duc_variant", f"must be one of {DUC_VARIANTS}, got {self.duc_variant!r}.")
        if self.ksac_merge not in KSAC_MERGES:
            fail("ksac_merge", f"must be one of {KSAC_MERGES}, got {self.ksac_merge!r}.")
        if self.decoder_output_stride:
            strides = self.decoder_output_stride
            if list(strides) != sorted(strides, reverse=True) or len(set(strides)) != len(strides):
                fail("decoder_output_stride", f"must be distinct and descending, got {strides}.")
            for s in strides:
                if s not in spec.decoder_strides:
                    fail("decoder_output_stride", f"{self.model_variant} has decoder end points "
                         f"at strides {spec.decoder_strides}, not {s}.")
                if s >= (self.output_stride or 32):
                    fail("decoder_output_stride", f"{s} must be smaller than output_stride "
                         f"{self.output_stride or 32} (the decoder upsamples).")
        if self.multi_grid and not spec.supports_multi_grid:
            fail("multi_grid", f"{self.model_variant} has no multi-grid block; use xception_* or "
                 "resnet_v1_*.")
        if self.hdc_unit_rates and not self.model_variant.startswith("resnet"):
            fail("hdc_unit_rates", "HDC unit rates apply to resnet_v1_* backbones only.")
        if self.depth_multiplier <= 0:
            fail("depth_multiplier", f"must be > 0, got {self.depth_multiplier}.")
        if self.batch_norm_decay is not None and not 0.0 <= self.batch_norm_decay < 1.0:
            fail("batch_norm_decay", f"must be in [0, 1), got {self.batch_norm_decay}.")
        self._validate_original_options(fail)

    def _validate_original_options(self, fail) -> None:
        """The original's checks of its head, pyramid and prediction flags."""
        if self.quantize_delay_step < -1:
            fail("quantize_delay_step", f"must be >= 0, or -1 for float, got "
                 f"{self.quantize_delay_step}.")
        if self.logits_kernel_size < 1:
            fail("logits_kernel_size", f"must be >= 1, got {self.logits_kernel_size}.")
        if self.logits_kernel_size != 1 and (self.aspp_with_batch_norm
                                             or not self.atrous_rates):
            fail("logits_kernel_size", "must be 1 when aspp_with_batch_norm is True or there "
                 f"are no atrous_rates (the original's rule), got {self.logits_kernel_size}.")
        if not self.aspp_with_batch_norm and self.head != "aspp":
            fail("aspp_with_batch_norm", f"False replaces the ASPP head by multi-rate logits; "
                 f"it does not combine with head={self.head!r}.")
        if not self.aspp_with_batch_norm and self.upsampling != "bilinear":
            fail("aspp_with_batch_norm", "False makes multi-rate logits; it needs "
                 "upsampling='bilinear'.")
        if self.image_pyramid and min(self.image_pyramid) <= 0:
            fail("image_pyramid", f"scales must be > 0, got {self.image_pyramid}.")
        if self.image_pyramid and len({f"{s:.2f}" for s in self.image_pyramid}) != len(
                self.image_pyramid):
            fail("image_pyramid", f"scales must differ (to 2 decimals, the original's "
                 f"logits_%.2f names), got {self.image_pyramid}.")
        if self.image_pyramid and self.upsampling != "bilinear":
            fail("image_pyramid", "needs upsampling='bilinear' (DUC logits are at the input "
                 "size of each scale).")
        if self.merge_method not in MERGE_METHODS:
            fail("merge_method", f"must be one of {MERGE_METHODS}, got {self.merge_method!r}.")
        if not self.prediction_with_upsampled_logits and self.upsampling != "bilinear":
            fail("prediction_with_upsampled_logits", "False needs upsampling='bilinear' (DUC "
                 "has no low-resolution logits).")
        self._validate_lr_aspp(fail)
        if self.dense_prediction_cell_json and self.head != "dpc":
            fail("dense_prediction_cell_json", f"selects the Dense Prediction Cell head; it "
                 f"does not combine with head={self.head!r}.")
        if self.head == "dpc":
            from deeplab.layers.dense_prediction_cell import parse_cell

            parse_cell(self.dense_prediction_cell)
        elif self.dense_prediction_cell is not None:
            fail("dense_prediction_cell", "belongs to head='dpc'.")
        defaults = {f.name: f.default for f in dataclasses.fields(self)}
        if not self.model_variant.startswith("nas_"):
            for name in NAS_FLAGS:
                if getattr(self, name) != defaults[name]:
                    fail(name, f"{getattr(self, name)!r} belongs to the nas_pnasnet / "
                         f"nas_hnasnet backbones, not {self.model_variant}; leave it at "
                         f"{defaults[name]!r}.")
        elif self.nas_stem_output_num_conv_filters < 1:
            fail("nas_stem_output_num_conv_filters", "must be >= 1.")

    def _validate_lr_aspp(self, fail) -> None:
        """The LR-ASPP flags only in combinations that change the model (the original
        ignored the rest silently)."""
        if self.image_se_uses_qsigmoid and not self.aspp_with_squeeze_and_excitation:
            fail("image_se_uses_qsigmoid", "applies to the squeeze-and-excitation gate; set "
                 "aspp_with_squeeze_and_excitation too.")
        if self.aspp_with_squeeze_and_excitation and not self.add_image_level_feature:
            fail("aspp_with_squeeze_and_excitation", "gates with the image pooling branch; "
                 "it needs add_image_level_feature.")
        if self.decoder_use_sum_merge and not self.decoder_output_stride:
            fail("decoder_use_sum_merge", "is a decoder option; set decoder_output_stride "
                 "(e.g. 8 for the MobileNetV3 models).")
        if self.decoder_output_is_logits:
            if not self.decoder_use_sum_merge:
                fail("decoder_output_is_logits", "needs decoder_use_sum_merge (the "
                     "original's LR-ASPP decoder).")
            if self.decoder_filters != self.num_classes:
                fail("decoder_output_is_logits", f"the decoder's output is the logits, so "
                     f"decoder_filters ({self.decoder_filters}) must equal num_classes "
                     f"({self.num_classes}).")
            if self.upsampling != "bilinear" or self.image_pyramid:
                fail("decoder_output_is_logits", "combines with upsampling='bilinear' and a "
                     "single scale only.")
        if self.divisible_by is not None and self.model_variant != "mobilenet_v2":
            fail("divisible_by", f"applies to mobilenet_v2 only; {self.model_variant} rounds "
                 "to multiples of 8 (the original ignores it there).")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> ModelConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"ModelConfig: unknown fields {sorted(unknown)}.")
        return cls(**values)
