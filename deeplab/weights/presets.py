"""The original release's model zoo by name: each tarball's model config, data set, crop and
the results the zoo reports (``g3doc/model_zoo.md`` and ``g3doc/quantize.md``).

A preset turns a tarball name (``deeplabv3_pascal_train_aug_2018_01_04.tar.gz``), the folder
it extracts to (``deeplabv3_pascal_train_aug``) or the zoo's checkpoint name
(``xception65_coco_voc_trainaug``) into the flags the original trained and evaluated that
checkpoint with, so importing it needs no model flags.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType

PASCAL_CROP = (513, 513)
CITYSCAPES_CROP = (1025, 2049)
DATE_SUFFIX = re.compile(r"_\d{4}_\d{2}_\d{2}$")
ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar")


@dataclasses.dataclass(frozen=True)
class ZooResult:
    """One result row of the zoo: the eval settings and what it measured with them.

    Attributes:
        output_stride: eval output stride.
        atrous_rates: the ASPP rates at that stride (doubled at OS 8), () without ASPP.
        eval_scales: the eval scales.
        add_flipped_images: whether eval added flipped images.
        miou: the reported mIoU in percent.
        split: the split it was measured on ("val" or "test").
    """

    output_stride: int
    atrous_rates: tuple[int, ...]
    eval_scales: tuple[float, ...]
    add_flipped_images: bool
    miou: float
    split: str = "val"

    def describe(self) -> str:
        flip = ", flipped" if self.add_flipped_images else ""
        scales = ",".join(f"{s:g}" for s in self.eval_scales)
        return f"{self.miou:.2f}% ({self.split}, output stride {self.output_stride}, " \
               f"scales {scales}{flip})"


@dataclasses.dataclass(frozen=True)
class Preset:
    """A model-zoo checkpoint.

    Attributes:
        name: the zoo's checkpoint name, e.g. ``xception65_coco_voc_trainaug``.
        tarball: the download's name without ``.tar.gz``.
        dataset: the registered data set it predicts, None for ImageNet backbones.
        model: the ModelConfig fields (the original's flags for it).
        eval_crop_size: the eval crop the zoo's numbers were measured at.
        results: the zoo's reported results, first the one at the training stride.
        backbone_only: an ImageNet-pretrained backbone: the head is new, ``num_classes``
            is the user's.
        quantized: trained with quantization (``quantize.md``); its ranges are not imported.
    """

    name: str
    tarball: str
    dataset: str | None
    model: Mapping
    eval_crop_size: tuple[int, int] | None = None
    results: tuple[ZooResult, ...] = ()
    backbone_only: bool = False
    quantized: bool = False

    def model_config(self, **overrides):
        """The :class:`~deeplab.config.ModelConfig` of the checkpoint (``overrides`` replace
        fields, e.g. ``num_classes`` for a backbone)."""
        from deeplab.config import ModelConfig

        return ModelConfig(**{**self.model, **overrides})

    def result_for(self, output_stride: int, eval_scales, add_flipped_images: bool):
        """The zoo's result measured with these settings, else None."""
        for result in self.results:
            if (result.output_stride == output_stride and add_flipped_images ==
                    result.add_flipped_images and tuple(eval_scales) == result.eval_scales):
                return result
        return None


def _scales(start: float, step: float, stop: float) -> tuple[float, ...]:
    count = round((stop - start) / step) + 1
    return tuple(round(start + i * step, 4) for i in range(count))


SINGLE = (1.0,)
VOC_MS = _scales(0.5, 0.25, 1.75)
CITYSCAPES_MS = _scales(0.75, 0.25, 1.25)
X65 = {"model_variant": "xception_65", "atrous_rates": (6, 12, 18),
       "decoder_output_stride": (4,)}
X65_RATES_OS8 = (12, 24, 36)
MNV3 = {"image_pooling_crop_size": (769, 769), "image_pooling_stride": (4, 5),
        "add_image_level_feature": True, "aspp_convs_filters": 128,
        "aspp_with_concat_projection": False, "aspp_with_squeeze_and_excitation": True,
        "decoder_use_sum_merge": True, "decoder_filters": 19, "decoder_output_is_logits": True,
        "image_se_uses_qsigmoid": True, "decoder_output_stride": (8,), "output_stride": 32,
        "num_classes": 19}
DPC_JSON = "deeplab/core/dense_prediction_cell_branch5_top1_cityscapes.json"


def _mnv2(**fields) -> dict:
    return {"model_variant": "mobilenet_v2", "atrous_rates": (), **fields}


def _voc(name, tarball, model, *results, quantized=False) -> Preset:
    return Preset(name, tarball, "pascal_voc_seg", {"num_classes": 21, **model}, PASCAL_CROP,
                  tuple(results), quantized=quantized)


def _cityscapes(name, tarball, model, *results) -> Preset:
    return Preset(name, tarball, "cityscapes", {"num_classes": 19, **model}, CITYSCAPES_CROP,
                  tuple(results))


def _imagenet(name, tarball, model) -> Preset:
    return Preset(name, tarball, None, model, backbone_only=True)


_ALL = (
    # PASCAL VOC 2012 (model_zoo.md), and quantize.md's 8-bit checkpoints.
    _voc("mobilenetv2_dm05_coco_voc_trainaug", "deeplabv3_mnv2_dm05_pascal_trainaug_2018_10_01",
         _mnv2(depth_multiplier=0.5), ZooResult(16, (), SINGLE, False, 70.19)),
    _voc("mobilenetv2_dm05_coco_voc_trainval", "deeplabv3_mnv2_dm05_pascal_trainval_2018_10_01",
         _mnv2(depth_multiplier=0.5), ZooResult(8, (), SINGLE, False, 71.83, "test")),
    _voc("mobilenetv2_coco_voc_trainaug", "deeplabv3_mnv2_pascal_train_aug_2018_01_29", _mnv2(),
         ZooResult(16, (), SINGLE, False, 75.32), ZooResult(8, (), VOC_MS, True, 77.33)),
    _voc("mobilenetv2_coco_voc_trainval", "deeplabv3_mnv2_pascal_trainval_2018_01_29", _mnv2(),
         ZooResult(8, (), VOC_MS, True, 80.25, "test")),
    _voc("xception65_coco_voc_trainaug", "deeplabv3_pascal_train_aug_2018_01_04", X65,
         ZooResult(16, (6, 12, 18), SINGLE, False, 82.20),
         ZooResult(8, X65_RATES_OS8, VOC_MS, True, 83.58)),
    _voc("xception65_coco_voc_trainval", "deeplabv3_pascal_trainval_2018_01_04", X65,
         ZooResult(8, X65_RATES_OS8, VOC_MS, True, 87.80, "test")),
    _voc("mobilenetv2_dm05_coco_voc_trainaug_8bit",
         "deeplabv3_mnv2_dm05_pascal_train_aug_8bit_2019_04_26", _mnv2(depth_multiplier=0.5),
         ZooResult(16, (), SINGLE, False, 69.65), quantized=True),
    _voc("mobilenetv2_coco_voc_trainaug_8bit", "deeplabv3_mnv2_pascal_train_aug_8bit_2019_04_26",
         _mnv2(), ZooResult(16, (), SINGLE, False, 74.26), quantized=True),
    # Cityscapes.
    _cityscapes("mobilenetv2_coco_cityscapes_trainfine",
                "deeplabv3_mnv2_cityscapes_train_2018_02_05", _mnv2(),
                ZooResult(16, (), SINGLE, False, 70.71),
                ZooResult(8, (), CITYSCAPES_MS, True, 73.57)),
    _cityscapes("mobilenetv3_large_cityscapes_trainfine",
                "deeplab_mnv3_large_cityscapes_trainfine_2019_11_15",
                {"model_variant": "mobilenet_v3_large_seg", **MNV3},
                ZooResult(32, (), SINGLE, False, 72.41)),
    _cityscapes("mobilenetv3_small_cityscapes_trainfine",
                "deeplab_mnv3_small_cityscapes_trainfine_2019_11_15",
                {"model_variant": "mobilenet_v3_small_seg", **MNV3},
                ZooResult(32, (), SINGLE, False, 68.99)),
    _cityscapes("xception65_cityscapes_trainfine", "deeplabv3_cityscapes_train_2018_02_06", X65,
                ZooResult(16, (6, 12, 18), SINGLE, False, 78.79),
                ZooResult(8, X65_RATES_OS8, CITYSCAPES_MS, True, 80.42)),
    _cityscapes("xception71_dpc_cityscapes_trainfine",
                "deeplab_cityscapes_xception71_trainfine_2018_09_08",
                {"model_variant": "xception_71", "dense_prediction_cell_json": DPC_JSON,
                 "decoder_output_stride": (4,)},
                ZooResult(16, (), SINGLE, False, 80.31)),
    _cityscapes("xception71_dpc_cityscapes_trainval",
                "deeplab_cityscapes_xception71_trainvalfine_2018_09_08",
                {"model_variant": "xception_71", "dense_prediction_cell_json": DPC_JSON,
                 "decoder_output_stride": (4,)},
                ZooResult(8, (), _scales(0.75, 0.25, 2.0), True, 82.66, "test")),
    _cityscapes("edgetpu-deeplab", "edgetpu-deeplab_2020_03_09",
                {"model_variant": "mobilenet_edgetpu", "atrous_rates": (),
                 "aspp_convs_filters": 256, "output_stride": 32},
                ZooResult(32, (), SINGLE, False, 70.6), ZooResult(16, (), SINGLE, False, 74.1)),
    _cityscapes("edgetpu-deeplab-slim", "edgetpu-deeplab-slim_2020_03_09",
                {"model_variant": "mobilenet_edgetpu", "atrous_rates": (),
                 "depth_multiplier": 0.75, "aspp_convs_filters": 128, "output_stride": 32},
                ZooResult(32, (), SINGLE, False, 70.0), ZooResult(16, (), SINGLE, False, 73.2)),
    # ADE20K (151 classes: class 0 is "other", ignored in eval).
    Preset("mobilenetv2_ade20k_train", "deeplabv3_mnv2_ade20k_train_2018_12_03", "ade20k",
           _mnv2(num_classes=151, decoder_output_stride=(4,)), (257, 257),
           (ZooResult(16, (), SINGLE, False, 32.04),)),
    Preset("xception65_ade20k_train", "deeplabv3_xception_ade20k_train_2018_05_29", "ade20k",
           {**X65, "num_classes": 151}, PASCAL_CROP,
           (ZooResult(8, X65_RATES_OS8, VOC_MS, True, 45.65),)),
    # ImageNet-pretrained backbones (initial checkpoints; the head is the user's).
    _imagenet("xception_41_imagenet", "xception_41_2018_05_09", {**X65, "model_variant":
                                                                 "xception_41"}),
    _imagenet("xception_65_imagenet", "deeplabv3_xception_2018_01_04", X65),
    _imagenet("xception_65_imagenet_coco", "xception_65_coco_pretrained_2018_10_02", X65),
    _imagenet("xception_71_imagenet", "xception_71_2018_05_09", {**X65, "model_variant":
                                                                 "xception_71"}),
    _imagenet("resnet_v1_50_beta_imagenet", "resnet_v1_50_2018_05_04",
              {"model_variant": "resnet_v1_50_beta", "atrous_rates": (6, 12, 18),
               "multi_grid": (1, 2, 4)}),
    _imagenet("resnet_v1_101_beta_imagenet", "resnet_v1_101_2018_05_04",
              {"model_variant": "resnet_v1_101_beta", "atrous_rates": (6, 12, 18),
               "multi_grid": (1, 2, 4)}),
)
PRESETS: Mapping[str, Preset] = MappingProxyType({p.name: p for p in _ALL})


def _names(preset: Preset) -> set[str]:
    return {preset.name, preset.tarball, DATE_SUFFIX.sub("", preset.tarball)}


def strip_archive_suffix(name: str) -> str:
    for suffix in ARCHIVE_SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def find_preset(path_or_name: str | Path) -> Preset | None:
    """The preset a name, a tarball, its extracted folder or a checkpoint inside it names:
    the file name without ``.tar.gz``, or the nearest enclosing folder whose name is a
    tarball's (with or without its date) or a zoo checkpoint's."""
    path = Path(path_or_name)
    for part in [path.name, *(p.name for p in path.parents)]:
        part = strip_archive_suffix(part)
        for preset in _ALL:
            if part in _names(preset):
                return preset
    return None


def close_names(name: str) -> list[str]:
    """Zoo names (or tarball names) close to ``name``: what a typo meant, best first."""
    names = sorted({n for p in _ALL for n in _names(p)})
    return difflib.get_close_matches(strip_archive_suffix(Path(str(name)).name), names, n=3,
                                     cutoff=0.75)


def get_preset(name: str) -> Preset:
    """The preset of a zoo name (or a tarball's name, or a URL ending in one).

    Raises:
        ValueError: naming the closest names when there are close ones (a typo), else
            listing them all; for a URL of another file, saying what to do with it.
    """
    preset = find_preset(name)
    if preset is not None:
        return preset
    if re.match(r"^[a-z]+://", str(name)):
        raise ValueError(f"{name} is a URL whose file is not a model zoo tarball: from_preset "
                         "takes a zoo name (its URL is known; DEEPLAB_ZOO_URL sets a mirror); "
                         "for a file of your own, download it and give weights=<its path>, or "
                         "load it with deeplab.load_model")
    close = close_names(name)
    if close:
        raise ValueError(f"{name!r} is not a checkpoint of the original's model zoo; did you "
                         f"mean {' or '.join(repr(c) for c in close)}?")
    raise ValueError(f"{name!r} is not a checkpoint of the original's model zoo; known: "
                     f"{', '.join(sorted(PRESETS))} (or their tarball names).")


def eval_command(preset: Preset, result: ZooResult, model_path: str | Path) -> str:
    """The ``deeplab-eval`` command line that measures ``result`` (the data set's records
    left for the user to point at)."""
    parts = [f"deeplab-eval --checkpoint_path={model_path}",
             f"--dataset_dir=<{preset.dataset} records>", "--eval_split=val"]
    if preset.eval_crop_size:
        parts.append("--eval_crop_size={},{}".format(*preset.eval_crop_size))
    if preset.dataset == "ade20k":  # the zoo's "input (longest side)"
        side = max(preset.eval_crop_size)
        parts.append(f"--min_resize_value={side} --max_resize_value={side}")
    if result.output_stride != preset.model.get("output_stride", 16):
        parts.append(f"--output_stride={result.output_stride}")
        if result.atrous_rates:
            parts.append("--atrous_rates=" + ",".join(map(str, result.atrous_rates)))
    if result.eval_scales != SINGLE:
        parts.append("--eval_scales=" + ",".join(f"{s:g}" for s in result.eval_scales))
    if result.add_flipped_images:
        parts.append("--add_flipped_images")
    return " ".join(parts)


def describe_preset(preset: Preset, model_path: str | Path) -> str:
    """Lines for the import: which zoo checkpoint this is, and how to reproduce its numbers."""
    lines = [f"model zoo: {preset.name} ({preset.tarball}.tar.gz)"]
    if preset.backbone_only:
        lines.append("  an ImageNet-pretrained backbone (its head is new): train from it with "
                     f"--tf_initial_checkpoint={model_path}")
    if preset.quantized:
        lines.append("  trained with quantization: its float weights are imported, its ranges "
                     "are not (--quantize_delay_step=0 learns them again)")
    for result in preset.results:
        lines.append(f"  reported {result.describe()}: {eval_command(preset, result, model_path)}")
    return "\n".join(lines)


def zoo_comparison(preset_name: str | None, output_stride: int, eval_scales,
                   add_flipped_images: bool, eval_split: str) -> str | None:
    """The line eval prints beside its mIoU for a model imported from the zoo."""
    preset = PRESETS.get(preset_name) if preset_name else None
    if preset is None or not preset.results:
        return None
    result = preset.result_for(output_stride, eval_scales, add_flipped_images)
    if result is None:
        others = "; ".join(r.describe() for r in preset.results)
        return f"the model zoo reports for {preset.name}, with other eval settings: {others}"
    split = "" if result.split == eval_split.split("_")[0] else \
        f" (on {result.split}; this eval ran on {eval_split})"
    return f"the model zoo reports {result.describe()} for {preset.name}{split}"
