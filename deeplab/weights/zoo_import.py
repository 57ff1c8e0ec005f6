"""Model-zoo checkpoints as they are downloaded: a tarball, its extracted folder or a
checkpoint prefix, imported with the model its name or its variables give.

The original's tarballs hold a folder (``deeplabv3_pascal_train_aug/``) with
``model.ckpt[-N].{index,data-*}`` and ``frozen_inference_graph.pb``. Only the checkpoint is
read; an archive is checked (``deeplab.weights.archive``: member types, names, declared
sizes against a limit and the free space) and unpacked into a temporary folder (checkpoint
files only, with ``tarfile``'s ``data`` filter as a second guard) removed afterwards.
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path

from deeplab.weights.archive import unpack_checkpoint
from deeplab.weights.presets import ARCHIVE_SUFFIXES, Preset, find_preset, get_preset
from deeplab.weights.report import ImportReport

_STEP = re.compile(r"ckpt-(\d+)$")
_STATE_PATH = re.compile(r'^model_checkpoint_path:\s*"(.*)"\s*$', re.M)


def _step(prefix: Path) -> int:
    match = _STEP.search(prefix.name)
    return int(match.group(1)) if match else -1


def _named_by_state(folder: Path) -> Path | None:
    """The prefix a folder's ``checkpoint`` state file names, if that checkpoint is there
    (the file may hold the training machine's absolute path: its name is what counts)."""
    state = folder / "checkpoint"
    if not state.is_file():
        return None
    match = _STATE_PATH.search(state.read_text(errors="replace"))
    if match is None:
        return None
    prefix = folder / Path(match.group(1)).name
    return prefix if Path(f"{prefix}.index").is_file() else None


def _checkpoint_prefix(folder: Path, source: Path) -> Path:
    """The checkpoint a folder holds: the one its ``checkpoint`` file names, else the
    newest ``model.ckpt-N`` (as TF's ``latest_checkpoint``, which the original read)."""
    prefixes = [p.with_suffix("") for p in folder.rglob("*.index")]
    if not prefixes:
        raise FileNotFoundError(f"{source} holds no TF checkpoint (no model.ckpt*.index): give "
                                "the model zoo's tarball, its extracted folder or the "
                                "checkpoint prefix")
    for parent in sorted({p.parent for p in prefixes}):
        named = _named_by_state(parent)
        if named is not None:
            return named
    return max(prefixes, key=lambda p: (p.name.startswith("model.ckpt"), _step(p)))


def _missing_prefix(path: Path) -> FileNotFoundError:
    """The error for a checkpoint prefix without its ``.index``, naming those beside it."""
    others = sorted(p.name[:-len(".index")] for p in path.parent.glob("*.index")) \
        if path.parent.is_dir() else []
    there = f"; {path.parent} holds {', '.join(others)}" if others else ""
    return FileNotFoundError(f"{path}: no such checkpoint ({path.name}.index is missing{there}): "
                             "give the prefix of one that is there, its folder or the tarball")


@contextlib.contextmanager
def zoo_checkpoint(path: str | Path) -> Iterator[str]:
    """Yields the checkpoint prefix of a tarball (``.tar.gz``, ``.tgz``, ``.tar``; checked
    by :mod:`deeplab.weights.archive`, then unpacked for the duration), a folder (the
    checkpoint its ``checkpoint`` file names, else its newest ``model.ckpt*``) or a prefix
    (which must exist)."""
    path = Path(path)
    if path.name.endswith(ARCHIVE_SUFFIXES):
        if not path.is_file():
            preset = find_preset(path)
            hint = (f" (deeplab-import-weights --preset={preset.name}, or "
                    f"deeplab.from_preset({preset.name!r}), downloads it)" if preset else "")
            raise FileNotFoundError(f"{path} not found{hint}")
        with tempfile.TemporaryDirectory(prefix="deeplab-zoo-") as folder:
            unpack_checkpoint(path, folder)
            yield str(_checkpoint_prefix(Path(folder), path))
        return
    if path.is_dir():
        yield str(_checkpoint_prefix(path, path))
        return
    if not Path(f"{path}.index").is_file():
        raise _missing_prefix(path)
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
    import tensorflow as tf

    from deeplab.config import ModelConfig
    from deeplab.model import DeepLab
    from deeplab.weights.checkpoint_import import import_tf1_checkpoint

    given = dict(given or {})
    preset = preset or find_preset(path)
    with zoo_checkpoint(path) as prefix:
        try:
            if preset is not None:
                config = preset.model_config(**given)
            else:
                config = ModelConfig(**infer_model_fields(prefix, given))
            model = DeepLab(config)
            # An ImageNet backbone's head is new: only the backbone is read, all of it.
            exclude = _head_scopes(model) if preset is not None and preset.backbone_only \
                else ()
            report = import_tf1_checkpoint(model, prefix, exclude_scopes=exclude, strict=True)
        except (tf.errors.OpError, IndexError) as error:
            # A .data cut short reads as "IndexError: Read less bytes than requested".
            reason = str(getattr(error, "message", error)).strip().splitlines()[0][:200]
            inside = f" (its {Path(prefix).name})" if Path(prefix) != Path(path) else ""
            raise ValueError(f"{path}{inside} cannot be read ({reason}): the checkpoint is cut "
                             "short or damaged; download it again") from None
    return ZooImport(model, preset, report)


def _head_scopes(model) -> list[str]:
    from deeplab.weights.scopes import scope_targets

    backbone = model.backbone.checkpoint_prefix + "/"
    return [scope for scope in scope_targets(model) if not scope.startswith(backbone)]


def preset_labels(preset: Preset, model) -> dict | None:
    """The class names and colours of the preset's data set, kept with its imported model
    (None for an ImageNet backbone, or a model of another class count)."""
    if preset.dataset is None:
        return None
    from deeplab.data.descriptor import get_dataset
    from deeplab.inference.labels import ClassLabels

    descriptor = get_dataset(preset.dataset)
    if descriptor.num_classes != model.config.num_classes:
        return None
    return ClassLabels.of_dataset(descriptor).to_json()


# ModelConfig fields that do not change which weights a model has (how it is run or
# trained): a file may differ from its preset in these, or in the atrous rates' values.
_FREE_FIELDS = ("output_stride", "multi_grid", "crop_size", "image_pooling_crop_size",
                "image_pooling_stride", "weight_decay", "batch_norm_decay",
                "fine_tune_batch_norm", "sync_batch_norm", "image_pyramid", "merge_method",
                "prediction_with_upsampled_logits", "quantize_delay_step", "hdc_unit_rates")


def _weights_layout(config) -> dict:
    values = config.to_dict()
    for field in _FREE_FIELDS:
        values.pop(field, None)
    rates = values.get("atrous_rates")
    if isinstance(rates, (list, tuple)):
        values["atrous_rates"] = f"{len(rates)} rates"
    return values


def check_weights_file(preset: Preset, path: str | Path, fields: dict) -> None:
    """Refuses a ``.weights.h5`` that is not the preset's model (``from_preset(name,
    weights=path)``): one imported from another preset, or whose config differs from the
    preset's (with ``fields`` applied) in anything that shapes the weights.

    Raises:
        ValueError: naming the file, the preset and what differs.
    """
    from deeplab.runs.store import stored_config, stored_preset

    other = stored_preset(path)
    if other is not None and other != preset.name:
        raise ValueError(f"{path} was imported from the zoo's {other}, not {preset.name}: give "
                         f"from_preset({other!r}, weights=...), or load it with "
                         "deeplab.load_model")
    stored = _weights_layout(stored_config(path))
    wanted = _weights_layout(preset.model_config(**fields))
    differ = sorted(k for k in set(stored) | set(wanted) if stored.get(k) != wanted.get(k))
    if not differ:
        return
    what = ", ".join(f"{k} {stored.get(k)!r} in the file, {wanted.get(k)!r} in the preset"
                     for k in differ)
    hint = (f"; if it was fine-tuned from {preset.name} for {stored['num_classes']} classes, "
            f"give num_classes={stored['num_classes']}" if differ == ["num_classes"] else "")
    raise ValueError(f"{path} holds another model than the zoo's {preset.name} ({what}): load it "
                     f"as it is with deeplab.load_model({str(path)!r}){hint}")


def _load_weights_file(preset: Preset, path: str | Path, fields: dict):
    """The model of a ``.weights.h5`` of the preset, with ``fields`` applied; another
    ``num_classes`` starts the logits afresh (the rest comes from the file)."""
    from deeplab.model import DeepLab
    from deeplab.runs.store import load_model, stored_config

    stored = stored_config(path)
    if fields.get("num_classes", stored.num_classes) == stored.num_classes:
        return load_model(path, **fields)
    from deeplab.weights.transfer import copy_weights

    model = DeepLab(dataclasses.replace(stored, **fields))
    copy_weights(model, load_model(path), skip=model.last_layer_prefixes(logits_only=True))
    return model


def from_preset(name: str, weights: str | Path | None = None, load_weights: bool = True,
                file_hash: str | None = None, **fields):
    """A model of the original's zoo by name, with its weights (``deeplab.from_preset``,
    keras-hub's convention).

    The first call downloads the zoo's tarball into the cache
    (:mod:`deeplab.weights.zoo_cache`: ``$DEEPLAB_HOME/zoo``, with progress, resumed and
    retried, its SHA-256 recorded) and imports it once; later calls load the imported
    weights from the cache, without network.

    Args:
        name: a zoo checkpoint name (``xception65_coco_voc_trainaug``), its tarball's name,
            or a URL of the tarball (a mirror).
        weights: instead of the zoo's download: a tarball, its folder or checkpoint prefix,
            a ``.weights.h5`` (checked to be this preset's model: another model's file is
            refused, naming both), or a URL of the tarball.
        load_weights: False builds the preset's model with fresh weights (no download).
        file_hash: the tarball's SHA-256 when you know it (``sha256:<hex>``); the zoo
            publishes none.
        fields: ModelConfig overrides: ``num_classes`` (a new last layer, the rest from the
            zoo), or fields that do not change the weights (``output_stride=8``).

    Raises:
        ValueError: an unknown name (naming the closest), a file of another model, a hash
            that differs; ``OSError`` for a download that fails (naming the URL and where to
            put the file by hand).
    """
    from deeplab.weights.zoo_cache import cached_model, is_url, parse_sha256, sha256_of

    preset = get_preset(name)
    if not load_weights:
        if weights is not None:
            raise ValueError("from_preset: load_weights=False builds fresh weights; do not give "
                             "weights= too")
        from deeplab.model import DeepLab

        return DeepLab(preset.model_config(**fields))
    url = str(name) if is_url(name) else None
    if weights is not None and is_url(weights):
        found = find_preset(weights)
        if found is not preset:
            raise ValueError(f"weights={weights} is not {preset.name}'s tarball "
                             f"({preset.tarball}.tar.gz)" +
                             (f" but {found.name}'s" if found else "") +
                             ": give the preset's URL, or download the file and give its path")
        url, weights = str(weights), None
    if weights is None:
        return _load_weights_file(preset, cached_model(preset, url=url, file_hash=file_hash),
                                  fields)
    pinned = parse_sha256(file_hash)
    if pinned is not None and Path(weights).is_file() and sha256_of(weights) != pinned:
        raise ValueError(f"{weights} has SHA-256 {sha256_of(weights)}, not the given "
                         f"file_hash {pinned}")
    if str(weights).endswith(".weights.h5"):
        check_weights_file(preset, weights, fields)
        return _load_weights_file(preset, weights, fields)
    found = find_preset(weights)
    if found is not None and found != preset:
        raise ValueError(f"{weights} is the zoo's {found.name}, not {preset.name}")
    return import_zoo_checkpoint(weights, fields, preset).model
