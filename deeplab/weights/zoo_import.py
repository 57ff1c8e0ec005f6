"""Model-zoo checkpoints as they are downloaded: a tarball, its extracted folder or a
checkpoint prefix, imported with the model its name or its variables give.

The original's tarballs hold a folder (``deeplabv3_pascal_train_aug/``) with
``model.ckpt[-N].{index,data-*}`` and ``frozen_inference_graph.pb``. Only the checkpoint is
read; an archive is unpacked into a temporary folder (checkpoint files only, with
``tarfile``'s ``data`` filter, so no member can write outside it) and removed afterwards.
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path

from deeplab.weights.presets import ARCHIVE_SUFFIXES, Preset, find_preset, get_preset
from deeplab.weights.report import ImportReport

_STEP = re.compile(r"ckpt-(\d+)$")
_CHECKPOINT_MEMBER = re.compile(r"(^|/)(model\.ckpt[^/]*|checkpoint)$")


def _newest_prefix(folder: Path) -> Path:
    prefixes = [p.with_suffix("") for p in folder.rglob("*.index")]
    if not prefixes:
        raise FileNotFoundError(f"{folder} holds no TF checkpoint (no model.ckpt*.index): give "
                                "the model zoo's tarball, its extracted folder or the "
                                "checkpoint prefix")

    def step(prefix: Path) -> int:
        match = _STEP.search(prefix.name)
        return int(match.group(1)) if match else -1

    return max(prefixes, key=lambda p: (p.name.startswith("model.ckpt"), step(p)))


@contextlib.contextmanager
def zoo_checkpoint(path: str | Path) -> Iterator[str]:
    """Yields the checkpoint prefix of a tarball (``.tar.gz``, ``.tgz``, ``.tar``; unpacked
    for the duration), a folder (its newest ``model.ckpt*``) or a prefix (as it is)."""
    path = Path(path)
    if path.name.endswith(ARCHIVE_SUFFIXES):
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found")
        with tempfile.TemporaryDirectory(prefix="deeplab-zoo-") as folder:
            try:
                with tarfile.open(path) as archive:
                    members = [m for m in archive.getmembers()
                               if m.isfile() and _CHECKPOINT_MEMBER.search(m.name)]
                    archive.extractall(folder, members=members, filter="data")
            except (tarfile.TarError, EOFError, OSError) as error:
                reason = ("not a complete tar archive"
                          if isinstance(error, (tarfile.ReadError, EOFError))
                          else " ".join(str(error).split())[:200])
                raise ValueError(f"{path} cannot be unpacked ({reason}): download it again") \
                    from None
            yield str(_newest_prefix(Path(folder)))
        return
    if path.is_dir():
        yield str(_newest_prefix(path))
        return
    yield str(path)


def infer_model_fields(prefix: str, given: dict) -> dict:
    """ModelConfig fields read from a checkpoint's variable names and shapes, for a
    checkpoint whose name is not a preset; ``given`` (the flags on the command line) wins.

    Raises:
        ValueError: naming the flag to give where the variables cannot tell (the backbone
            family, the ASPP rates, the DPC cell).
    """
    import tensorflow as tf

    shapes = tf.train.load_checkpoint(prefix).get_variable_to_shape_map()
    roots = {name.split("/")[0] for name in shapes}
    fields: dict = {}
    if "MobilenetV2" in roots:
        fields["model_variant"] = "mobilenet_v2"
        # The last block's 320 outputs at depth multiplier 1, rounded to multiples of 8
        # (the stem's 32 cannot tell 0.35 from 0.5: both round to 16).
        last = shapes.get("MobilenetV2/expanded_conv_16/project/weights")
        if last:
            fields["depth_multiplier"] = last[-1] / 320
    for root in roots:
        match = re.fullmatch(r"(xception_(41|65|71)|resnet_v1_(50|101))", root)
        if match:
            beta = root.startswith("resnet") and f"{root}/conv1_1/weights" in shapes
            fields["model_variant"] = root + ("_beta" if beta else "")
    for root, first_level in (("pnasnet", 1), ("hnasnet", 0)):  # cell_0's level
        if root in roots:
            fields["model_variant"] = f"nas_{root}"
            cell_0 = shapes.get(f"{root}/cell_0/1x1/weights")
            if cell_0:
                fields["nas_stem_output_num_conv_filters"] = cell_0[-1] // 2 ** first_level
            if f"{root}/classification_head_conv/weights" in shapes:
                fields["nas_use_classification_head"] = True
            if root == "hnasnet" and "nas_use_classification_head" not in fields:
                fields["output_stride"] = 8  # its cells end there
    if "model_variant" not in fields and "model_variant" not in given:
        raise ValueError(f"{prefix}: its variables ({', '.join(sorted(roots)[:6])}) are not a "
                         "backbone this tool recognises by name: give --model_variant and the "
                         "model flags it was trained with")
    logits = shapes.get("logits/semantic/weights")
    if logits:
        fields["num_classes"] = logits[-1]
    if "decoder/feature_projection0/weights" in shapes:
        fields["decoder_output_stride"] = (4,)  # the names do not hold it; 4 in the whole zoo
    if any(name.startswith("dense_prediction_cell") for name in roots) and \
            "dense_prediction_cell_json" not in given:
        raise ValueError(f"{prefix} has a Dense Prediction Cell head: give "
                         "--dense_prediction_cell_json (the zoo's: deeplab/core/"
                         "dense_prediction_cell_branch5_top1_cityscapes.json)")
    # aspp0 is the 1x1 branch; aspp1.. are the atrous ones.
    branches = sorted({int(m.group(1)) for name in shapes
                       for m in [re.match(r"aspp(\d+)(_depthwise|/)", name)]
                       if m and m.group(1) != "0"})
    if branches and "atrous_rates" not in given:
        raise ValueError(f"{prefix} has {len(branches)} atrous ASPP branches (aspp"
                         f"{branches[0]}..aspp{branches[-1]}) whose rates its variables do not "
                         "hold: give --atrous_rates (the zoo trained 6,12,18 at output stride 16)")
    if not branches:
        fields["atrous_rates"] = ()
    return {**fields, **given}


@dataclasses.dataclass
class ZooImport:
    """What :func:`import_zoo_checkpoint` did: the model, the preset (if the name is one),
    the import report."""

    model: object
    preset: Preset | None
    report: ImportReport


def import_zoo_checkpoint(path: str | Path, given: dict | None = None,
                          preset: Preset | None = None) -> ZooImport:
    """Builds the model a zoo checkpoint holds and imports its weights.

    Args:
        path: a tarball, its extracted folder or a checkpoint prefix.
        given: ModelConfig fields from the command line; with a preset only those that do
            not change the weights' shapes may differ (``num_classes`` only for an
            ImageNet backbone, whose head is new).
        preset: the preset, when the caller knows it; else found from ``path``'s name, and
            without one the model is read from the checkpoint's variables.
    """
    from deeplab.config import ModelConfig
    from deeplab.model import DeepLab
    from deeplab.weights.checkpoint_import import import_tf1_checkpoint

    given = dict(given or {})
    preset = preset or find_preset(path)
    with zoo_checkpoint(path) as prefix:
        if preset is not None:
            config = preset.model_config(**given)
        else:
            config = ModelConfig(**infer_model_fields(prefix, given))
        model = DeepLab(config)
        # An ImageNet backbone's head is new: only the backbone is read, all of it.
        exclude = _head_scopes(model) if preset is not None and preset.backbone_only else ()
        report = import_tf1_checkpoint(model, prefix, exclude_scopes=exclude, strict=True)
    return ZooImport(model, preset, report)


def _head_scopes(model) -> list[str]:
    from deeplab.weights.scopes import scope_targets

    backbone = model.backbone.checkpoint_prefix + "/"
    return [scope for scope in scope_targets(model) if not scope.startswith(backbone)]


def from_preset(name: str, weights: str | Path | None = None, **fields):
    """A model of the original's zoo by name (``deeplab.from_preset``).

    Args:
        name: a zoo checkpoint name (``xception65_coco_voc_trainaug``) or its tarball's.
        weights: the downloaded tarball, its folder or checkpoint prefix, or a
            ``.weights.h5`` written by ``deeplab-import-weights``; None builds the preset's
            model with fresh weights (nothing is downloaded).
        fields: ModelConfig overrides (``num_classes`` for an ImageNet backbone).
    """
    preset = get_preset(name)
    if weights is None:
        from deeplab.model import DeepLab

        return DeepLab(preset.model_config(**fields))
    if str(weights).endswith(".weights.h5"):
        from deeplab.runs.store import load_model

        return load_model(weights, **fields)
    found = find_preset(weights)
    if found is not None and found != preset:
        raise ValueError(f"{weights} is the zoo's {found.name}, not {preset.name}")
    return import_zoo_checkpoint(weights, fields, preset).model
