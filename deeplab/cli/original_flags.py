"""The original's flags whose mechanism is gone or not built yet: accepted, never ignored.

The original's command lines must run unchanged, so every flag of its binaries parses. A
flag whose TF1 mechanism was replaced prints one line saying what replaces it when it is
given; one whose feature this release lacks fails with a line saying what it needs. The
distribution flags of train.py are read by :mod:`deeplab.training.distribution`.
"""

from __future__ import annotations

from absl import flags


def define_master() -> None:
    flags.DEFINE_string("master", "", "The original's TF1 session target. Accepted; this "
                        "binary runs in-process (tf.distribute reads clusters from TF_CONFIG).")


def define_keep_aspect_ratio() -> None:
    flags.DEFINE_boolean("keep_aspect_ratio", True, "Accepted for the original's command "
                         "lines, where it had no effect either: resizing always keeps the "
                         "aspect ratio.")


def define_inference_label_weights() -> None:
    flags.DEFINE_multi_string("label_weights", [], "The original's per-class loss weights; "
                              "they weight the training loss only, so this binary ignores "
                              "them (with a line), as the original did.")


def define_inference_original_flags(master: bool = True) -> None:
    """The original's flags an inference binary accepts without their TF1 mechanism:
    ``--master`` (eval, vis), ``--keep_aspect_ratio`` and ``--label_weights``."""
    if master:
        define_master()
    define_keep_aspect_ratio()
    define_inference_label_weights()


def report_original_flags(values: flags.FlagValues, binary: str, log=print) -> None:
    """Prints one line for each replaced flag given.

    Args:
        values: the parsed flags.
        binary: the binary's name, for the messages.
        log: where the lines go.
    """
    def given(name):
        return name in values and values[name].present

    if given("master") and values.master:
        log(f"--master={values.master}: the TF1 session target is gone; {binary} runs in "
            "this process (tf.distribute takes clusters from TF_CONFIG).")
    if given("keep_aspect_ratio"):
        log("--keep_aspect_ratio: no effect, as in the original (resizing always keeps the "
            "aspect ratio).")
    if given("label_weights") and binary != "deeplab-train":
        log(f"--label_weights: weights the training loss only; {binary} does not use it "
            "(the original accepted and ignored it too).")


# Where a binary's default differs from the original's, and why ("*": every binary that
# has the flag). The README's flag section lists these; tests/test_original_flags.py fails
# on any other difference, and on an entry here that no longer differs.
CHANGED_DEFAULTS: dict[tuple[str, str], str] = {
    ("eval", "eval_crop_size"): "none: whole images, padded only to what the network needs "
    "(no crop size to get right); --eval_crop_size=513,513 pads as the original did",
    ("vis", "vis_crop_size"): "none: whole images; --vis_crop_size=513,513 pads as the "
    "original did",
    ("vis", "colormap_type"): "the data set's colormap (the original always used pascal)",
    ("export_model", "output_stride"): "the checkpoint's stride (the original's export "
    "defaulted to 8 while training used 16, a classic cause of wrong exports); give "
    "--output_stride=8 for denser inference",
    ("export_model", "crop_size"): "none: the export takes images of any size; with "
    "--crop_size, images are padded to that crop and the image pooling is sized from it, as "
    "the original, and the SavedModel gets a batched signature of that size",
    ("*", "dataset"): "--dataset_dir's dataset.json (written by every converter), else "
    "pascal_voc_seg",
    ("*", "batch_norm_decay"): "each component's original decay (the original's flag was "
    "0.9997 but its ASPP and decoder hard-coded 0.9997 and its backbones kept their own)",
    ("build_voc2012_data", "semantic_segmentation_folder"): "SegmentationClass: its palette "
    "PNGs are read as class ids, so remove_gt_colormap is optional",
    ("build_voc2012_data", "image_format"): "jpg, as the original's download script passed",
}


def changed_default(binary: str, flag: str) -> str | None:
    """Why ``binary``'s ``--flag`` default differs from the original's, or None."""
    return CHANGED_DEFAULTS.get((binary, flag)) or CHANGED_DEFAULTS.get(("*", flag))
