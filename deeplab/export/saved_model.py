"""Writing the TF Serving SavedModel (``<export_path>/<version>/``)."""

from __future__ import annotations

from pathlib import Path

import tensorflow as tf

from deeplab.export.frozen_graph import inference_function, write_inference_graph
from deeplab.export.serving import DEFAULT_MAX_PIXELS, SegmentationServer
from deeplab.runs.atomic import atomic_directory
from deeplab.runs.store import check_class_names, load_model, save_model

ASSET_WEIGHTS = "deeplab.weights.h5"


def next_version(export_path: Path) -> int:
    """1 + the largest numeric version folder (TF Serving picks the largest)."""
    versions = [int(p.name) for p in export_path.glob("*") if p.name.isdigit()]
    return max(versions, default=0) + 1


def export_saved_model(model, export_path: str | Path, version: int | None = None,
                       inference_scales=(1.0,), add_flipped_images: bool = False,
                       min_resize_value=None, max_resize_value=None, resize_factor=None,
                       batch_crop_size=None, save_inference_graph: bool = False,
                       labels: dict | None = None,
                       max_image_pixels: int | None = DEFAULT_MAX_PIXELS) -> Path:
    """Exports ``model`` as ``<export_path>/<version>/`` (written to a temp dir, then renamed).

    Signatures: ``serving_default`` (uint8 [1, H, W, 3] → ``semantic_predictions`` int32
    [1, H, W] and ``semantic_probabilities``), ``serving_encoded`` (JPEG/PNG bytes) and, with
    ``batch_crop_size``, ``serving_batch`` (uint8 [N, h, w, 3]). The Keras weights and
    config are kept in ``assets/`` so the TFLite converter can rebuild the model, with the
    class names and colormap (``labels``) that predict draws its answers with. Images of
    more than ``max_image_pixels`` pixels are refused (None: no limit). With
    ``save_inference_graph`` the version folder also holds ``inference_graph.pbtxt`` (the
    original's option): the serving graph as text, under the frozen graph's tensor names.
    """
    if labels:  # refused before the long trace, not after it
        check_class_names(labels["class_names"], model.config.num_classes, "labels")
    export_path = Path(export_path)
    export_path.mkdir(parents=True, exist_ok=True)
    version = next_version(export_path) if version is None else int(version)
    target = export_path / str(version)
    if target.exists():
        raise FileExistsError(f"{target} exists; TF Serving versions are immutable. Pick "
                              "another --version or leave it out for the next free one.")
    server = SegmentationServer(model, inference_scales, add_flipped_images,
                                min_resize_value, max_resize_value, resize_factor,
                                max_pixels=max_image_pixels)
    signatures = {
        "serving_default": server.serve.get_concrete_function(),
        "serving_encoded": server.serve_encoded.get_concrete_function(),
    }
    if batch_crop_size:
        signatures["serving_batch"] = server.batch_function(batch_crop_size).get_concrete_function()
    with atomic_directory(target) as temporary:
        tf.saved_model.save(server, str(temporary), signatures=signatures)
        save_model(model, temporary / "assets" / ASSET_WEIGHTS, labels)
        if save_inference_graph:
            write_inference_graph(inference_function(server), temporary)
    return target


def keras_model_from_saved_model(path: str | Path):
    """The Keras model kept in an export's assets (for TFLite conversion)."""
    path = Path(path)
    weights = path / "assets" / ASSET_WEIGHTS
    if not weights.is_file():
        raise FileNotFoundError(f"{weights} not found: {path} is not a deeplab-keras export "
                                "(export/export_model.py writes it).")
    return load_model(weights)
