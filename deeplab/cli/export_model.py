r"""Exports a trained or imported model as a TF Serving SavedModel or the original's frozen graph.

    python export/export_model.py --checkpoint_path=exp/voc/train/model.weights.h5 \
        --export_path=exp/voc/export/saved_model --inference_scales=0.75,1.0,1.25 \
        --add_flipped_images
    python export/export_model.py --checkpoint_path=exp/voc/train \
        --export_path=exp/voc/export/frozen_inference_graph.pb --crop_size=513 \
        --crop_size=513 --inference_scales=1.0 --num_classes=21 --model_variant=mobilenet_v2

A directory --export_path gets ``<export_path>/<version>/`` with the signatures
``serving_default`` (uint8 [1, H, W, 3] → ``semantic_predictions`` int32 [1, H, W],
``semantic_probabilities``), ``serving_encoded`` (JPEG/PNG bytes) and, with --crop_size,
``serving_batch``.

An --export_path ending in ``.pb`` gets the original's frozen graph: a TF1 GraphDef with the
placeholder ``ImageTensor`` (uint8 [1, None, None, 3]) and the outputs
``SemanticPredictions`` (int32 [1, H, W]) and ``SemanticProbabilities`` ([1, H, W, C]), so
the original's demo code (``tf.compat.v1.import_graph_def``, feed ``ImageTensor:0``, fetch
``SemanticPredictions:0``) runs it. It takes images of any size (the original's --crop_size
capped them); convert_to_tflite --quantized_graph_def_path turns it into a TFLite model.

Both forms compute the same in-graph resize to range, padding, multi-scale and flips.
--save_inference_graph also writes ``inference_graph.pbtxt`` (the graph as text, variables
not frozen) in the version folder, or beside the ``.pb``. The model config comes from the
checkpoint; model flags given here override it (e.g. --output_stride=8 for denser
inference). A checkpoint trained with --quantize_delay_step exports its int8 simulation
(FakeQuant ops with the learned ranges), as the original's quantized export did; for the
int8 TFLite file use convert_to_tflite --checkpoint_path=... --quantization=int8.
"""

from __future__ import annotations

from absl import flags

from deeplab.cli.common import define_checkpoint_flag, define_inference_flags, define_resize_flags
from deeplab.cli.model_flags import explicit_model_overrides, parse_float_list, parse_int_list
from deeplab.cli.original_flags import define_inference_original_flags, report_original_flags
from deeplab.cli.runner import run_binary

define_checkpoint_flag("checkpoint_path")
flags.DEFINE_string("export_path", None, "SavedModel base directory (versions inside), or a "
                    ".pb file for the original's frozen graph (frozen_inference_graph.pb).")
flags.DEFINE_integer("version", None, "Version folder; default: the next free number.")
flags.DEFINE_multi_string("crop_size", [], "h,w of the batched signature serving_batch "
                          "(the original's --crop_size=513 --crop_size=513 form works); a "
                          "frozen graph takes any size and needs none.")
define_inference_flags("inference_scales")
define_resize_flags(" (in-graph)")
flags.DEFINE_integer("max_image_pixels", 4096 * 4096, "The SavedModel's signatures refuse "
                     "images of more pixels (encoded bytes from their header, before "
                     "decoding), so one request cannot take a server's memory; 0: no limit.",
                     lower_bound=0)
flags.DEFINE_boolean("save_inference_graph", False, "Also writes inference_graph.pbtxt (the "
                     "graph as text): in the version folder, or beside a .pb export.")
define_inference_original_flags(master=False)
flags.mark_flags_as_required(["checkpoint_path", "export_path"])
FLAGS = flags.FLAGS

FROZEN_GRAPH_SUFFIX = ".pb"


def main(argv):
    del argv
    report_original_flags(FLAGS, "export_model")
    from deeplab.weights.zoo_cache import resolve_model_path  # preset:NAME
    FLAGS.checkpoint_path = resolve_model_path(FLAGS.checkpoint_path)
    frozen = FLAGS.export_path.endswith(FROZEN_GRAPH_SUFFIX)
    if frozen and FLAGS.version is not None:
        raise ValueError("--version numbers SavedModel folders; a .pb --export_path is one "
                         "frozen graph file")
    crop = parse_int_list(FLAGS.crop_size, "crop_size") or None
    if crop is not None and len(crop) != 2:
        raise ValueError(f"--crop_size takes two values (height, width), got {crop}")
    from deeplab.quantization import describe_quantization, quantizers, require_learned_ranges
    from deeplab.runs.store import load_model

    # As the original: images are padded to the crop and the image pooling is sized from
    # it (a model trained at 769 exported at 1025,2049 pools the whole image).
    model = load_model(FLAGS.checkpoint_path, **explicit_model_overrides(FLAGS, crop))
    if quantizers(model):
        # The export carries the int8 simulation (its FakeQuant ops), as the original's
        # --quantize_delay_step export did; it needs learned ranges.
        require_learned_ranges(model)
        print(describe_quantization(model))
    options = dict(
        inference_scales=parse_float_list(FLAGS.inference_scales, "inference_scales"),
        add_flipped_images=FLAGS.add_flipped_images,
        min_resize_value=FLAGS.min_resize_value, max_resize_value=FLAGS.max_resize_value,
        resize_factor=FLAGS.resize_factor,
    )
    if frozen:
        from deeplab.export.frozen_graph import write_frozen_graph

        written = write_frozen_graph(model, FLAGS.export_path,
                                     save_inference_graph=FLAGS.save_inference_graph, **options)
        print(f"exported {written[0]} (feed ImageTensor:0, uint8 [1, H, W, 3]; fetch "
              "SemanticPredictions:0, SemanticProbabilities:0)")
        for path in written[1:]:
            print(f"wrote {path}")
        return
    from deeplab.export.saved_model import export_saved_model
    from deeplab.inference.labels import labels_to_keep

    labels = labels_to_keep(FLAGS.checkpoint_path, model.config.num_classes)
    path = export_saved_model(model, FLAGS.export_path, FLAGS.version, batch_crop_size=crop,
                              save_inference_graph=FLAGS.save_inference_graph,
                              labels=labels.to_json() if labels else None,
                              max_image_pixels=FLAGS.max_image_pixels or None, **options)
    print(f"exported {path}\n  try: saved_model_cli show --dir {path} --all")


def run():
    """Entry point (the thin script, or a console script)."""
    run_binary("export_model", main, describe_device=True)


if __name__ == "__main__":
    run()
