"""One interface over the model formats users hold: Keras weights, SavedModel, TFLite."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from deeplab.inference.probabilities import segment_whole_image
from deeplab.runs.store import WEIGHTS_SUFFIX, load_model, stored_config

DEFAULT_SIZE = 513


class KerasSegmenter:
    """A DeepLab Keras model; images are resized to fit ``max_size`` (the demo's 513) and
    padded to that square canvas, as the original's demo fed its exported graph."""

    def __init__(self, model, max_size: int = DEFAULT_SIZE):
        self.model = model
        self.canvas = (max_size, max_size)
        self.pad_value = model.config.backbone_spec.mean_pixel
        self.num_classes = model.config.num_classes

    def labels(self, image: np.ndarray) -> np.ndarray:
        def predict(canvas):
            return np.asarray(self.model(canvas[None].astype(np.float32)))[0].argmax(-1)

        return segment_whole_image(predict, image, self.canvas, self.pad_value)


def tflite_class_count(interpreter) -> int | None:
    """The number of classes a TFLite model predicts: its logits output's last dimension,
    or that of the ARG_MAX op's input for a model that outputs class ids; None when
    neither is there (a graph cut elsewhere)."""
    output = interpreter.get_output_details()[0]["shape"]
    if len(output) == 4:
        return int(output[-1])
    shapes = {t["index"]: t["shape"] for t in interpreter.get_tensor_details()}
    for op in interpreter._get_ops_details():
        if op["op_name"] == "ARG_MAX" and len(op["inputs"]):
            shape = shapes.get(int(op["inputs"][0]))
            if shape is not None and len(shape) and int(shape[-1]) > 0:
                return int(shape[-1])
    return None


def tflite_interpreter(model_path=None, model_content: bytes | None = None,
                       num_threads: int | None = None):
    """A TFLite interpreter, its tensors allocated; a file that is not a TFLite model is
    refused in one line naming it (the runtime's own message does not)."""
    from ai_edge_litert.interpreter import Interpreter

    try:
        interpreter = Interpreter(model_path=None if model_path is None else str(model_path),
                                  model_content=model_content, num_threads=num_threads)
        interpreter.allocate_tensors()
    except (ValueError, RuntimeError) as error:
        where = model_path if model_path is not None else "the model"
        reason = str(error).strip().splitlines()[0][:200] if str(error).strip() else "unreadable"
        raise ValueError(f"{where} is not a TFLite model this runtime can load ({reason}): "
                         "give a .tflite file written by convert_to_tflite or the original's "
                         "release") from None
    return interpreter


class TFLiteSegmenter:
    """A TFLite segmentation model with a fixed input size (ours or the original's).

    Input uint8, or float32 in ``input_range`` ("0,255" for our exports, "-1,1" for the
    original's float GPU model whose input is already preprocessed). Output either labels
    ([1, H, W], ArgMax inside) or logits ([1, H, W, C]).
    """

    def __init__(self, path: str | Path, input_range: str = "0,255", num_threads: int = 2):
        self.interpreter = tflite_interpreter(path, num_threads=num_threads)
        self.input = self.interpreter.get_input_details()[0]
        self.output = self.interpreter.get_output_details()[0]
        self.canvas = tuple(int(d) for d in self.input["shape"][1:3])
        low, high = (float(v) for v in input_range.split(","))
        self.input_scale = ((high - low) / 255.0, low)
        self.num_classes = tflite_class_count(self.interpreter)

    def _predict(self, canvas: np.ndarray) -> np.ndarray:
        if self.input["dtype"] == np.float32:
            scale, offset = self.input_scale
            data = canvas.astype(np.float32) * scale + offset
        else:
            data = canvas.astype(self.input["dtype"])
        self.interpreter.set_tensor(self.input["index"], data[None])
        self.interpreter.invoke()
        out = self.interpreter.get_tensor(self.output["index"])[0]
        return out.argmax(-1) if out.ndim == 3 else out

    def labels(self, image: np.ndarray) -> np.ndarray:
        return segment_whole_image(self._predict, image, self.canvas, 127.5)


class SavedModelSegmenter:
    """Runs an exported SavedModel's ``serving_default`` on RGB images (for predict)."""

    def __init__(self, path):
        import tensorflow as tf

        path = Path(path)
        if not (path / "saved_model.pb").is_file():
            versions = sorted((p for p in path.glob("*/saved_model.pb")),
                              key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else -1)
            if not versions:
                raise FileNotFoundError(f"no saved_model.pb in {path} or its version folders")
            path = versions[-1].parent
        # A SavedModel is a program: loading runs no code, calling it runs its graph (the
        # README says to load only trusted ones).
        signature = tf.saved_model.load(str(path)).signatures.get("serving_default")
        outputs = getattr(signature, "structured_outputs", None) or {}
        if not isinstance(outputs, dict) or "semantic_predictions" not in outputs:
            raise ValueError(
                f"{path} is a SavedModel of another kind: it has no serving_default signature "
                "with a semantic_predictions output; give an export of export_model (or a "
                ".weights.h5, a training directory, a .tflite)")
        self.signature = signature
        probabilities = outputs.get("semantic_probabilities")
        self.num_classes = (int(probabilities.shape[-1] or 0) or None
                            if probabilities is not None else None)

    def labels(self, image):
        import tensorflow as tf

        outputs = self.signature(image=tf.constant(image[None]))
        # The export's output key (deeplab.export.serving.PREDICTIONS).
        return outputs["semantic_predictions"].numpy()[0]


def model_format(path: str | Path) -> str:
    """"keras" (a ``.weights.h5``, a training directory or a ``ckpt-N`` prefix), "tflite" or
    "saved_model"; ValueError naming what is accepted for anything else."""
    path = Path(path)
    if (path.name.endswith(WEIGHTS_SUFFIX) or (path / "checkpoint").is_file()
            or Path(f"{path}.index").is_file()):
        return "keras"
    if path.suffix == ".tflite":
        if not path.is_file():
            raise FileNotFoundError(f"TFLite model not found: {path}")
        return "tflite"
    if (path / "saved_model.pb").is_file() or any(path.glob("*/saved_model.pb")):
        return "saved_model"
    raise ValueError(
        f"{path}: not a model this tool reads. Give a .weights.h5 (with its .config.json), "
        "a training directory or ckpt-N prefix, a .tflite file, or a SavedModel directory."
    )


def load_segmenter(path: str | Path, max_size: int = DEFAULT_SIZE,
                   tflite_input_range: str = "0,255"):
    """Picks the segmenter for a ``.weights.h5``, a training directory or ``ckpt-N``, a
    ``.tflite`` file or a SavedModel path."""
    kind = model_format(path)
    if kind == "keras":
        # A crop-sized image pooling (a training run's crop, an imported file's input)
        # is sized from the canvas instead, as the original's export with --crop_size: the
        # pooling covers the whole image at any --max_size.
        crop = (max_size, max_size) if stored_config(path).crop_size else None
        return KerasSegmenter(load_model(path, **({"crop_size": crop} if crop else {})),
                              max_size)
    if kind == "tflite":
        return TFLiteSegmenter(path, tflite_input_range)
    return SavedModelSegmenter(path)


def load_any_model(path: str | Path, tflite_input_range: str = "0,255"):
    """Any model ``deeplab-predict`` takes (``deeplab.load_model``).

    A ``.weights.h5``, a training directory or a ``ckpt-N`` prefix gives the Keras
    :class:`~deeplab.model.DeepLab` (to call, fine-tune or export); an exported SavedModel or
    ``.tflite`` file, which are not Keras models, gives a :class:`SavedModelSegmenter` or
    :class:`TFLiteSegmenter`, whose ``labels(image)`` segments an RGB image of any size.
    """
    kind = model_format(path)
    if kind == "keras":
        return load_model(path)
    if kind == "tflite":
        return TFLiteSegmenter(path, tflite_input_range)
    return SavedModelSegmenter(path)
