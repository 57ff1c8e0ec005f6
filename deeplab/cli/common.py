"""What the binaries share: the model-to-load flag, flag checks, the data set and classes."""

from __future__ import annotations

import os

from absl import flags

# The original named "the model to load" --checkpoint_dir in eval.py / vis.py and
# --checkpoint_path in export_model.py; every binary takes both (and predict's old --model).
CHECKPOINT_FLAG_NAMES = ("checkpoint_dir", "checkpoint_path")
CHECKPOINT_HELP = ("The model to load: a training directory (its latest checkpoint), a "
                   "ckpt-N prefix, a .weights.h5 (with its .config.json) or preset:NAME (a "
                   "model zoo checkpoint, downloaded and imported into $DEEPLAB_HOME/zoo once)")


def define_checkpoint_flag(name: str, help_text: str = CHECKPOINT_HELP,
                           aliases: tuple[str, ...] = (), model_flags: bool = True) -> None:
    """Defines the model-to-load flag under the binary's original ``name``; the other
    spelling (and any old ``aliases``) refer to the same flag. With ``model_flags`` the
    model flags come too: given on the command line they override the loaded config
    (``deeplab.cli.model_flags.explicit_model_overrides``)."""
    from deeplab.cli.model_flags import define_model_flags

    flags.DEFINE_string(name, None, help_text + ".")
    for alias in tuple(n for n in CHECKPOINT_FLAG_NAMES if n != name) + aliases:
        flags.DEFINE_alias(alias, name)
    if model_flags:
        define_model_flags()


def require(values, *names: str) -> None:
    """ValueError naming the first required flag that is missing."""
    for name in names:
        if not values[name].value:
            raise ValueError(f"--{name} is required.")


def dataset_from_flags(values):
    """(dataset name or path, descriptor) from --dataset, else --dataset_dir's dataset.json.

    Without either, the original's default ``pascal_voc_seg`` descriptor is used.
    """
    from deeplab.data.descriptor import get_dataset

    name = values.dataset
    if name is None:
        has_json = os.path.isfile(os.path.join(values.dataset_dir, "dataset.json"))
        name = values.dataset_dir if has_json else "pascal_voc_seg"
    return name, get_dataset(name)


def define_dataset_flags(dataset_dir_help: str = "Directory of <split>-*.tfrecord shards.",
                         split: tuple[str, str, str] | None = None) -> None:
    """``--dataset_dir`` and ``--dataset`` (a registered name or a dataset.json), and the
    binary's split flag when ``split`` gives its (name, default, help)."""
    if split is not None:
        flags.DEFINE_string(*split)
    flags.DEFINE_string("dataset_dir", None, dataset_dir_help)
    flags.DEFINE_string("dataset", None, "Registered name (pascal_voc_seg, cityscapes, ade20k, "
                        "synthetic) or a dataset.json path; default: --dataset_dir's "
                        "dataset.json, else pascal_voc_seg.")


def define_inference_flags(scales_flag: str = "eval_scales") -> None:
    """Multi-scale and flipped inference (``--eval_scales`` or export's
    ``--inference_scales``, and ``--add_flipped_images``), the original's names."""
    flags.DEFINE_multi_string(scales_flag, ["1.0"],
                              "Inference scales, e.g. 0.5,0.75,1.0,1.25,1.5,1.75.")
    flags.DEFINE_boolean("add_flipped_images", False, "Also average left-right flipped inputs.")


def define_converter_flags(output_dir: str = "./tfrecord", num_shards: int = 4,
                           required: tuple[str, ...] = (), image_format: str | None = None,
                           ) -> None:
    """What every data set converter takes: the output folder, shards, workers, overwrite;
    ``required`` names the converter's own flags that have no default. With
    ``image_format`` (its default), the original's ``build_data.py`` flags
    ``--image_format`` and ``--label_format`` too."""
    from deeplab.data.writer import default_num_workers

    if image_format is not None:
        flags.DEFINE_enum("image_format", image_format, ["jpg", "jpeg", "png"],
                          "Format for images that must be re-encoded (arrays, other "
                          "formats); JPEG and PNG files are stored byte for byte.")
        flags.DEFINE_enum("label_format", "png", ["png"], "Label format (PNG only).")

    flags.DEFINE_string("output_dir", output_dir, "Where the records and dataset.json go.")
    flags.DEFINE_integer("num_shards", num_shards, "Shards per split.")
    flags.DEFINE_integer("num_workers", default_num_workers(), "Encoding processes.")
    flags.DEFINE_bool("overwrite", False, "Rebuild splits even when they are up to date.")
    if required:
        flags.mark_flags_as_required(list(required))


def converter_options() -> dict:
    """The values of :func:`define_converter_flags` but ``--output_dir``, as keyword
    arguments of the ``convert_*`` functions."""
    values = flags.FLAGS
    options = dict(num_shards=values.num_shards, num_workers=values.num_workers,
                   overwrite=values.overwrite)
    if "image_format" in values:
        options["image_format"] = values.image_format
    return options


def define_crop_flag(prefix: str) -> None:
    """The original's ``--<prefix>_crop_size`` (``eval``/``vis``) and
    ``--<prefix>_batch_size``. Unlike the original, the crop has no default: without it
    images are processed whole."""
    flags.DEFINE_multi_string(
        f"{prefix}_crop_size", [], "Pad every image to this h,w (513,513 or the repeated "
        "form) and size the image pooling from it, as the original (whose default was "
        "513,513); default: whole images, no crop to get right.")
    flags.DEFINE_integer(f"{prefix}_batch_size", 1, "Images per batch (with a crop size: one "
                         "forward pass per batch).")


def crop_from_flag(values: flags.FlagValues, name: str) -> tuple[int, int] | None:
    """(h, w) of a crop flag, None when not given; ValueError naming the flag otherwise."""
    from deeplab.cli.model_flags import parse_int_list

    crop = parse_int_list(values[name].value, name)
    if not crop:
        return None
    if len(crop) != 2 or min(crop) < 1:
        raise ValueError(f"--{name} takes two positive sizes height,width, got {crop}")
    return crop


def define_watch_flags(limit_flag: str, what: str) -> None:
    """The original's checkpoint loop (``--max_number_of_evaluations`` /
    ``--max_number_of_iterations``, ``--eval_interval_secs``) and ours (``--watch``,
    ``--watch_timeout``)."""
    flags.DEFINE_integer(limit_flag, 0, f"Given: run on the latest checkpoint and then each "
                         f"new one, this many {what} in all (<= 0: no limit, as the "
                         "original). Not given: the latest checkpoint once.")
    flags.DEFINE_boolean("watch", False, f"Same as --{limit_flag}=0: every new checkpoint.")
    flags.DEFINE_integer("watch_timeout", 3600, "With --watch (or, when given, with "
                         f"--{limit_flag}): stop after this many seconds without a new "
                         "checkpoint (<= 0: never; the original never stopped).")
    flags.DEFINE_integer("eval_interval_secs", 300, "When watching: minimum seconds between "
                         "two checkpoints.")


def watch_settings(values: flags.FlagValues, limit_flag: str,
                   ) -> tuple[int | None, int | None]:
    """(limit, timeout) for :func:`deeplab.evaluation.watch.checkpoints_to_process`.

    limit: None (the given checkpoint once) or how many checkpoints (<= 0: all). timeout:
    seconds without a new checkpoint before stopping, None for never: ``--watch`` stops
    after ``--watch_timeout``; the original's limit flag waits forever, as the original,
    unless ``--watch_timeout`` is given.
    """
    timeout = values.watch_timeout if values.watch_timeout > 0 else None
    if values.watch:
        return 0, timeout
    if values[limit_flag].present:
        return values[limit_flag].value, timeout if values["watch_timeout"].present else None
    return None, None


def define_resize_flags(where: str = "") -> None:
    """The original's ``--min_resize_value``, ``--max_resize_value``, ``--resize_factor``
    (``where`` ends their help, e.g. " (in-graph)")."""
    flags.DEFINE_integer("min_resize_value", None, f"Resize the smaller side to this{where}.")
    flags.DEFINE_integer("max_resize_value", None, f"Cap the larger side at this{where}.")
    flags.DEFINE_integer("resize_factor", None, "Resized dims become a multiple of this plus 1.")


def define_split_inference_flags(prefix: str, limit_flag: str, what: str) -> None:
    """What eval and vis share when they run a checkpoint over a split: multi-scale and
    flips, ``--max_number_of_images``, the original's resizing, crop and batch
    (``--<prefix>_crop_size``, ``--<prefix>_batch_size``), the checkpoint loop
    (``limit_flag``) and the original's inference flags without a mechanism."""
    from deeplab.cli import original_flags

    define_inference_flags()
    flags.DEFINE_integer("max_number_of_images", None, "Process at most this many images.")
    flags.DEFINE_integer("save_worst", 0, "Write a panel (image | ground truth | prediction | "
                         "error map) for each of this many images with the lowest mIoU, and "
                         "a contact sheet of them (needs labels).")
    define_resize_flags()
    define_crop_flag(prefix)
    define_watch_flags(limit_flag, what)
    original_flags.define_inference_original_flags()
