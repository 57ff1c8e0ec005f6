"""Saving and loading a model as ``<name>.weights.h5`` + ``<name>.config.json``."""

from __future__ import annotations

import dataclasses
import json
import os
import re
from pathlib import Path

from deeplab.config import ModelConfig
from deeplab.model import DeepLab
from deeplab.quantization import quantizers
from deeplab.runs.atomic import atomic_path, write_text

WEIGHTS_SUFFIX = ".weights.h5"
CONFIG_SUFFIX = ".config.json"


def config_path_for(weights_path: str | Path) -> Path:
    """``x.weights.h5`` → ``x.config.json``."""
    weights_path = Path(weights_path)
    if not weights_path.name.endswith(WEIGHTS_SUFFIX):
        raise ValueError(f"Weights files end with {WEIGHTS_SUFFIX}: got {weights_path}.")
    return weights_path.with_name(weights_path.name[: -len(WEIGHTS_SUFFIX)] + CONFIG_SUFFIX)


LABELS_KEY = "labels"  # class names and colormap kept beside a model's config
PRESET_KEY = "preset"  # the model-zoo checkpoint a model was imported from


def check_class_names(names, num_classes: int, source: str,
                      fix: str = "give the data set the model was trained on") -> None:
    """Class names travel only with a model of as many classes: every place that keeps
    names with a model (``.config.json``, a run's ``config.json``, a SavedModel's assets, a
    TFLite labels file) checks them here, so 21 PASCAL names never name a 6-class model.

    Args:
        names: the class names, one per class id.
        num_classes: the model's class count.
        source: where the names come from, for the message (``--dataset pascal_voc_seg``).
        fix: what to do instead, for the message.

    Raises:
        ValueError: the counts differ.
    """
    if len(names) != num_classes:
        raise ValueError(f"{source} names {len(names)} classes and the model has "
                         f"{num_classes}: class names are kept only with a model of as many "
                         f"classes; {fix}")


def save_model(model: DeepLab, weights_path: str | Path, labels: dict | None = None,
               preset: str | None = None) -> Path:
    """Writes the weights and the ModelConfig beside them, each atomically; ``labels``
    (``{"class_names": [...], "colormap": ...}``) and the zoo ``preset`` the weights came
    from are kept in the config file too."""
    weights_path = Path(weights_path)
    config_path = config_path_for(weights_path)
    if labels:
        check_class_names(labels["class_names"], model.config.num_classes, "labels")
    with atomic_path(weights_path, suffix=WEIGHTS_SUFFIX) as temporary:
        model.save_weights(temporary)
    values = model.config.to_dict()
    if labels:
        values[LABELS_KEY] = labels
    if preset:
        values[PRESET_KEY] = preset
    write_text(config_path, json.dumps(values, indent=2) + "\n")
    return weights_path


TRAIN_CONFIG = "config.json"


def checkpoint_weights(model) -> dict:
    """The model's variables keyed by Keras path, for ``tf.train.Checkpoint(weights=...)``.

    Keras 3 layers do not expose their trainable variables as TF trackable children, so a
    ``tf.train.Checkpoint(model=...)`` written with an optimizer stores the kernels only
    under the optimizer; this explicit mapping lets a checkpoint be read into a fresh model
    without one.
    """
    return {variable.path: variable.value for variable in model.weights}


def optimizer_mismatch_message(where: str, saved: str, wanted: str) -> str:
    """The one line for a run folder trained with another ``--optimizer``."""
    return (f"{where} was written by a run with --optimizer={saved} and this command gives "
            f"--optimizer={wanted}: resume with --optimizer={saved}, or start a new "
            f"--train_logdir with --tf_initial_checkpoint={where} to go on from its weights "
            f"with {wanted}")


def _model_differences(saved: ModelConfig, wanted: ModelConfig, flag) -> str:
    """What differs, each field named by ``flag(field)`` (the flag of the binary that sets
    it: deeplab-train sets ``crop_size`` from ``--train_crop_size``)."""
    old, new = saved.to_dict(), wanted.to_dict()
    return ", ".join(f"{flag(key)}={old.get(key)!r} there, {new.get(key)!r} here"
                     for key in sorted(set(old) | set(new)) if old.get(key) != new.get(key))


def check_run_config(config) -> None:
    """Refuses to resume a run folder with other model flags or another ``--optimizer``
    (its checkpoints would not load, or their optimizer slots would load wrongly), saying
    what differs and how to go on."""
    logdir = Path(config.train_logdir)
    path = logdir / TRAIN_CONFIG
    if not path.is_file():
        return
    previous = read_json(path)
    saved = previous.get("model")
    if saved is not None:
        try:
            saved = ModelConfig.from_dict(saved)
        except (ValueError, TypeError) as error:
            raise ValueError(f"{path}: {str(error).rstrip('.')} (the file was edited); restore "
                             "it, or start a new --train_logdir") from None
    flag = getattr(config, "model_field_flag", lambda key: f"--{key}")
    if saved is not None and saved != config.model:
        raise ValueError(
            f"{logdir} holds a run with another model config "
            f"({_model_differences(saved, config.model, flag)}): give its "
            "flags to resume, or a new --train_logdir (with --tf_initial_checkpoint="
            f"{logdir} to start from its weights).")
    optimizer = previous.get("train", {}).get("optimizer")
    if optimizer and optimizer != config.optimizer and checkpoint_prefixes(str(logdir)):
        raise ValueError(optimizer_mismatch_message(str(logdir), optimizer, config.optimizer))


def write_run_config(config, labels: dict | None = None) -> None:
    """Keeps the run's config (a :class:`TrainConfig`) and the data set's class names and
    colormap (``labels``) beside its checkpoints in ``config.json``, after
    :func:`check_run_config`."""
    check_run_config(config)
    if labels:
        check_class_names(labels["class_names"], config.model.num_classes, "labels")
    logdir = Path(config.train_logdir)
    logdir.mkdir(parents=True, exist_ok=True)
    values = config.to_dict()
    values = {"model": values.pop("model"), "train": values}
    if labels:
        values[LABELS_KEY] = labels
    write_text(logdir / TRAIN_CONFIG, json.dumps(values, indent=2, default=list) + "\n")


def checkpoint_prefixes(directory: str) -> list[str]:
    """Every ``ckpt-N`` prefix of a run folder (listed in its index or with files), newest
    first, whether or not its files are complete."""
    steps = set()
    import tensorflow as tf

    state = tf.train.get_checkpoint_state(directory)
    listed = list(state.all_model_checkpoint_paths) if state else []
    for path in listed + tf.io.gfile.glob(os.path.join(directory, "ckpt-*")):
        match = re.search(r"ckpt-(\d+)(\.index|\.data-\d+-of-\d+)?$", path)
        if match:
            steps.add(int(match.group(1)))
    return [os.path.join(directory, f"ckpt-{step}") for step in sorted(steps, reverse=True)]


def read_json(path: str | Path) -> dict:
    """A JSON object from a file the project wrote (``config.json``, ``x.config.json``):
    a file that cannot be read, is not JSON (edited by hand, cut short) or holds no object
    is refused in one line naming it."""
    path = Path(path)
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ValueError(f"cannot read {path}: {error.strerror or error}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{path} is not valid JSON ({error}): it was edited or cut short; "
                         "restore it, or write it again with the tool that made it") from None
    if not isinstance(values, dict):
        raise ValueError(f"{path} holds a JSON {type(values).__name__}, not the object of "
                         "fields this project writes; restore it")
    return values


def read_config(path: Path, overrides: dict) -> ModelConfig:
    """The ModelConfig kept in ``path`` (a run's ``config.json`` or an ``x.config.json``),
    with ``overrides`` (fields the caller gives, e.g. ``output_stride=8``) replacing its own.

    Raises:
        ValueError: naming the file, when it is not JSON or a field in it is invalid.
    """
    values = read_json(path)
    values = values.get("model", values)  # train dirs keep {"model": ..., "train": ...}
    if not isinstance(values, dict):
        raise ValueError(f"{path}: its 'model' entry is not an object of ModelConfig fields")
    values.pop(LABELS_KEY, None)  # x.config.json keeps the labels beside the fields
    values.pop(PRESET_KEY, None)
    # The image pyramid is chosen where inference runs, as in the original (its eval's
    # --image_pyramid defaults to none even for a model trained with one): a loaded model is
    # single-scale unless the caller gives one.
    values["image_pyramid"] = None
    try:
        stored = ModelConfig.from_dict(values)  # the file's own fields, checked first
    except (ValueError, TypeError) as error:
        raise ValueError(f"{path}: {str(error).rstrip('.')} (the file was edited, or is not "
                         "a deeplab-keras model config); restore it") from None
    return ModelConfig.from_dict({**values, **overrides}) if overrides else stored


def _original_spelling(path: Path) -> Path | None:
    """``<run>/ckpt-N`` for the original's name ``<run>/model.ckpt-N`` (its scripts export
    ``${TRAIN_LOGDIR}/model.ckpt-${NUM_ITERATIONS}``), when that checkpoint exists."""
    match = re.fullmatch(r"model\.ckpt-(\d+)", path.name)
    ours = path.with_name(f"ckpt-{match.group(1)}") if match else None
    return ours if ours is not None and Path(f"{ours}.index").is_file() else None


def resolve_checkpoint(path: str | Path) -> tuple[Path, Path]:
    """(checkpoint prefix, config.json) for a training directory or a ``ckpt-N`` prefix."""
    import tensorflow as tf

    path = Path(path)
    if path.is_dir():
        latest = tf.train.latest_checkpoint(str(path))
        state = tf.train.get_checkpoint_state(str(path))
        if latest is None and state is not None and state.model_checkpoint_path:
            # Listed in the index, but its .index file is gone (a cut-short copy or save).
            raise FileNotFoundError(
                f"the latest checkpoint of {path}, {state.model_checkpoint_path}, is incomplete "
                f"({Path(state.model_checkpoint_path).name}.index is missing): give an earlier "
                "ckpt-N prefix of the same run")
        if latest is None:
            raise FileNotFoundError(
                f"{path} holds no checkpoint yet (no 'checkpoint' file): give a training "
                "directory after its first save, a ckpt-N prefix or a .weights.h5 file."
            )
        prefix, directory = Path(latest), path
    elif Path(f"{path}.index").is_file():
        prefix, directory = path, path.parent
    elif _original_spelling(path) is not None:
        prefix, directory = _original_spelling(path), path.parent
    else:
        raise FileNotFoundError(
            f"{path}: not a .weights.h5 file, a training directory or a checkpoint prefix "
            "(ckpt-N, without .index / .data-*)."
        )
    config = directory / TRAIN_CONFIG
    if not config.is_file():
        raise FileNotFoundError(f"{config} not found: the training directory keeps the model "
                                "config there.")
    return prefix, config


def stored_preset(path: str | Path) -> str | None:
    """The zoo preset a ``.weights.h5`` was imported from (``deeplab-import-weights``)."""
    path = Path(path)
    if not path.name.endswith(WEIGHTS_SUFFIX) or not config_path_for(path).is_file():
        return None
    return read_json(config_path_for(path)).get(PRESET_KEY)


def stored_config(path: str | Path) -> ModelConfig:
    """The ModelConfig a ``.weights.h5``, training directory or ``ckpt-N`` holds, without
    building the model."""
    path = Path(path)
    if path.name.endswith(WEIGHTS_SUFFIX):
        return read_config(config_path_for(path), {})
    return read_config(resolve_checkpoint(path)[1], {})


def load_model(path: str | Path, **overrides) -> DeepLab:
    """A DeepLab model from ``x.weights.h5`` (+ ``x.config.json``) or a TF training checkpoint.

    ``path`` may be a ``.weights.h5`` file, a training directory (its latest checkpoint)
    or a ``ckpt-N`` prefix; the config comes from the file beside it. ``overrides`` replace
    config fields that do not change the weights' shapes, e.g. ``output_stride=8`` to
    evaluate or export at a denser stride than training.
    """
    path = Path(path)
    if not path.name.endswith(WEIGHTS_SUFFIX):
        # A training directory is read at its newest checkpoint; one that a live trainer
        # rotates away (--max_to_keep) while it is read is followed by the next newest.
        for attempt in range(ROTATION_RETRIES):
            try:
                return _load_checkpoint(path, overrides)
            except CheckpointRotated:
                if not path.is_dir() or attempt == ROTATION_RETRIES - 1:
                    raise
    return _load_weights_file(path, overrides)


ROTATION_RETRIES = 3


class CheckpointRotated(FileNotFoundError):
    """A checkpoint was removed while it was read: a live trainer keeps only its newest
    ``--max_to_keep``. Its readers (eval and vis --watch, a directory's latest) go on
    with a newer one; it is not damaged."""


def _unreadable_checkpoint(prefix: Path, error: BaseException) -> Exception:
    """The error for a checkpoint whose read failed: rotated away (its ``.index`` is gone
    since it was found), or truncated."""
    reason = str(getattr(error, "message", error)).strip().splitlines()[0][:200]
    if not Path(f"{prefix}.index").is_file():
        return CheckpointRotated(
            f"{prefix} was removed while it was read: the run keeps only its newest "
            "checkpoints (--max_to_keep); give a newer ckpt-N, or the run's directory for its "
            "latest")
    return ValueError(f"checkpoint {prefix} cannot be read ({reason}): it is truncated or "
                      "incomplete; give an earlier ckpt-N of the same run")


def _load_checkpoint(path: Path, overrides: dict) -> DeepLab:
    """The model of a training directory's latest checkpoint or of a ``ckpt-N`` prefix."""
    import tensorflow as tf

    prefix, config_path = resolve_checkpoint(path)
    model = DeepLab(read_config(config_path, overrides))
    try:
        status = tf.train.Checkpoint(weights=checkpoint_weights(model)).read(str(prefix))
    except (tf.errors.OpError, IndexError, OSError) as error:
        # A truncated .data shard surfaces as "IndexError: Read less bytes than requested".
        raise _unreadable_checkpoint(prefix, error) from None
    try:
        status.assert_existing_objects_matched()
    except AssertionError as error:
        raise ValueError(f"{prefix} does not hold this model's weights ({error}).") from None
    # The optimizer's slots and step are in the checkpoint too; only the weights are read.
    status.expect_partial()
    # Which checkpoint a directory gave: a live run's latest may be newer by the time its
    # step is asked for (eval's metrics name this one's).
    model.source_checkpoint = str(prefix)
    return _finite(model, prefix)


def _load_weights_file(path: Path, overrides: dict) -> DeepLab:
    """The model of a ``.weights.h5`` and its ``.config.json``."""
    config_path = config_path_for(path)
    for required in (path, config_path):
        if not required.is_file():
            raise FileNotFoundError(
                f"{required} not found: a model is saved as {path.name} plus "
                f"{config_path.name} side by side (scripts/import_weights.py writes both)."
            )
    model = DeepLab(read_config(config_path, overrides))
    try:
        _read_weights(model, path, config_path)
    except ValueError:
        if not quantizers(model):
            raise
        # A float model's file read into a quantization-aware one (--quantize_delay_step
        # given now): the weights by path; the ranges stay to be learned.
        float_model = DeepLab(dataclasses.replace(model.config, quantize_delay_step=-1))
        _read_weights(float_model, path, config_path)
        by_path = {v.path: v for v in float_model.weights}
        for variable in model.weights:
            if variable.path in by_path:
                variable.assign(by_path[variable.path])
    return _finite(model, path)


def _read_weights(model: DeepLab, path: Path, config_path: Path) -> None:
    """``model.load_weights(path)``, its failures in one line naming the files: a file cut
    short or not HDF5, or weights of another model than ``config_path`` describes (Keras's
    own message prints the whole kernel)."""
    try:
        model.load_weights(str(path))
    except OSError as error:
        reason = str(error).strip().splitlines()[0][:200] if str(error).strip() else "unreadable"
        raise ValueError(f"{path} cannot be read ({reason}): it is truncated or not a "
                         ".weights.h5 file; copy it again, or write it again (save_model, "
                         "import_weights)") from None
    except ValueError as error:
        text = str(error)
        variable = re.search(r"Variable path=([^,\s]+)", text)
        shapes = re.search(r"variable\.shape=(\([^)]*\)), Received: value\.shape=(\([^)]*\))",
                           text)
        reason = (f"{variable.group(1)} is {shapes.group(2)} in the file and "
                  f"{shapes.group(1)} for the config" if variable and shapes
                  else text.strip().splitlines()[0][:200])
        raise ValueError(f"{path} does not hold the weights of the model {config_path.name} "
                         f"describes ({reason}): keep a .weights.h5 with the .config.json "
                         "written beside it") from None


def _finite(model: DeepLab, source) -> DeepLab:
    """``model``, unless ``source`` gave it NaN/Inf (a checkpoint saved after training
    diverged, by a release that did not check): then a one-line error."""
    from deeplab.runs.finite import describe_variables, nonfinite_variables

    bad = nonfinite_variables(model.weights)
    if bad:
        raise ValueError(f"{source} holds NaN/Inf in {describe_variables(bad)}: it was saved "
                         "after training diverged; give an earlier ckpt-N of the run")
    return model
