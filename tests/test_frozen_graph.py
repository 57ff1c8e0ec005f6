"""The original's frozen graph (frozen_inference_graph.pb): TF1 use, parity, TFLite, CLIs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import tensorflow as tf
from conftest import run_like_the_original_demo
from google.protobuf import text_format
from layer_test_utils import he_scale_weights

from deeplab.export.frozen_graph import (
    INFERENCE_GRAPH_NAME,
    frozen_graph_def,
    graph_reference,
    load_graph_def,
    run_frozen_graph,
    write_frozen_graph,
)
from deeplab.export.saved_model import export_saved_model
from deeplab.export.serving import SegmentationServer
from deeplab.export.tflite import check_on_image, convert_frozen_graph
from deeplab.inference.probabilities import predict_probabilities
from deeplab.model import build_deeplab
from deeplab.runs.store import load_model, save_model

REPO = Path(__file__).resolve().parent.parent
ENV = {"TF_CPP_MIN_LOG_LEVEL": "3", "TF_ENABLE_ONEDNN_OPTS": "0", "CUDA_VISIBLE_DEVICES": "",
       "PATH": "/usr/bin:/bin"}
NUM_CLASSES = 3


def tiny_model(seed: int = 2):
    """MobileNetV2 x0.25 with He-scaled random weights (several classes, clear margins)."""
    model = build_deeplab(num_classes=NUM_CLASSES, depth_multiplier=0.25, atrous_rates=(1, 2))
    return he_scale_weights(model, seed)


def images(*sizes, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (1, h, w, 3), dtype=np.uint8) for h, w in sizes]


def write_png(path: Path, image: np.ndarray) -> Path:
    cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    return path


@pytest.fixture(scope="module")
def model():
    return tiny_model()


@pytest.fixture(scope="module")
def frozen(model, tmp_path_factory):
    folder = tmp_path_factory.mktemp("frozen")
    written = write_frozen_graph(model, folder / "frozen_inference_graph.pb",
                                 save_inference_graph=True)
    return folder, written



@pytest.mark.slow
def test_frozen_graph_equals_the_saved_model_and_keras(model, frozen, tmp_path):
    _, (path, _) = frozen
    version = export_saved_model(model, tmp_path / "sm", save_inference_graph=True)
    serve = tf.saved_model.load(str(version)).signatures["serving_default"]
    classes = set()
    for image in images((33, 33), (50, 71), (17, 120)):
        predictions, probabilities = run_like_the_original_demo(path, image)
        assert predictions.dtype == np.int32 and predictions.shape == image.shape[:3]
        assert probabilities.shape == (*image.shape[:3], NUM_CLASSES)
        served = serve(image=tf.constant(image))
        np.testing.assert_array_equal(predictions, served["semantic_predictions"])
        np.testing.assert_allclose(probabilities, served["semantic_probabilities"], atol=1e-5)
        keras = predict_probabilities(model, tf.cast(image, tf.float32))
        np.testing.assert_array_equal(predictions, np.argmax(np.asarray(keras), -1))
        classes.update(np.unique(predictions).tolist())
    assert len(classes) > 1  # the comparison is not between constant maps
    # --save_inference_graph with a SavedModel: the text graph is inside the version folder.
    text = text_format.Parse((version / INFERENCE_GRAPH_NAME).read_text(),
                             tf.compat.v1.GraphDef())
    assert {"ImageTensor", "SemanticPredictions"} <= {n.name for n in text.node}
    assert not [p for p in (tmp_path / "sm").iterdir() if p.name.startswith(".tmp")]


def test_frozen_graph_has_the_original_interface_and_no_variables(frozen):
    _, (path, _) = frozen
    graph_def = load_graph_def(path)
    nodes = {n.name: n for n in graph_def.node}
    assert {"ImageTensor", "SemanticPredictions", "SemanticProbabilities"} <= set(nodes)
    assert nodes["ArgMax"].op == "ArgMax"  # convert_to_tflite's default --output_tensor_name
    image = nodes["ImageTensor"]
    assert image.op == "Placeholder" and image.attr["dtype"].type == tf.uint8.as_datatype_enum
    assert [d.size for d in image.attr["shape"].shape.dim] == [1, -1, -1, 3]
    assert [n.name for n in graph_def.node if n.op == "Placeholder"] == ["ImageTensor"]
    ops = {n.op for n in graph_def.node}
    assert not ops & {"VarHandleOp", "ReadVariableOp", "VariableV2", "NoOp"}
    # The graph ends at the original's outputs: nothing reads them.
    consumed = {i.lstrip("^").split(":")[0] for n in graph_def.node for i in n.input}
    assert not consumed & {"SemanticPredictions", "SemanticProbabilities"}


def test_files_written_atomically_and_inference_graph_parses(frozen):
    folder, written = frozen
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        ["frozen_inference_graph.pb", INFERENCE_GRAPH_NAME])
    assert [p.name for p in written] == ["frozen_inference_graph.pb", INFERENCE_GRAPH_NAME]
    text = text_format.Parse((folder / INFERENCE_GRAPH_NAME).read_text(),
                             tf.compat.v1.GraphDef())
    ops = {n.op for n in text.node}
    assert "ReadVariableOp" in ops  # the unfrozen graph: weights are variables, not text
    assert {"ImageTensor", "SemanticPredictions", "SemanticProbabilities"} <= {
        n.name for n in text.node}
    assert load_graph_def(folder / INFERENCE_GRAPH_NAME) == text


def test_in_graph_options_match_the_serving_computation(model):
    options = dict(inference_scales=(0.75,), add_flipped_images=True, min_resize_value=40,
                   max_resize_value=60, resize_factor=16)
    graph_def = frozen_graph_def(model, **options)
    server = SegmentationServer(model, **options)
    for image in images((30, 90), (71, 20), seed=4):
        got = run_frozen_graph(graph_def, image, ["SemanticPredictions:0",
                                                  "SemanticProbabilities:0"])
        want = server.serve(tf.constant(image))
        np.testing.assert_array_equal(got[0], want["semantic_predictions"])
        np.testing.assert_allclose(got[1], want["semantic_probabilities"], atol=1e-5)


def test_frozen_graph_converts_to_tflite_from_image_tensor(model, frozen, tmp_path):
    from ai_edge_litert.interpreter import Interpreter

    _, (path, _) = frozen
    graph_def = load_graph_def(path)
    image = images((33, 41), seed=5)[0]
    want = run_frozen_graph(graph_def, image, ["SemanticPredictions:0",
                                               "SemanticProbabilities:0"])
    # The default input (ImageTensor:0, given the crop size) and the original's default output.
    labels = convert_frozen_graph(graph_def, None, "ArgMax:0", (33, 41))
    probabilities = convert_frozen_graph(graph_def, "ImageTensor:0", "SemanticProbabilities:0",
                                         (33, 41))
    outputs = []
    for flatbuffer in (labels, probabilities):
        interpreter = Interpreter(model_content=flatbuffer, num_threads=2)
        interpreter.allocate_tensors()
        detail = interpreter.get_input_details()[0]
        assert detail["dtype"] == np.uint8 and list(detail["shape"]) == [1, 33, 41, 3]
        interpreter.set_tensor(detail["index"], image)
        interpreter.invoke()
        outputs.append(interpreter.get_tensor(interpreter.get_output_details()[0]["index"]))
    assert outputs[0].dtype == np.int32 and outputs[0].shape == (1, 33, 41)
    np.testing.assert_allclose(outputs[1], want[1], atol=1e-4)
    top2 = np.sort(want[1], -1)[..., -2:]
    clear = top2[..., 1] - top2[..., 0] > 1e-4  # float TFLite may flip only near-ties
    np.testing.assert_array_equal(outputs[0][clear], want[0][clear])
    assert clear.mean() > 0.99
    # --test_image_path's report, with the frozen graph as the reference.
    report = check_on_image(labels, write_png(tmp_path / "x.png", image[0]),
                            graph_reference(graph_def, "ImageTensor:0", "ArgMax:0"),
                            "the frozen graph", ("bg", "a", "b")).splitlines()
    assert "resized to 33x41: output [1, 33, 41] int32; classes found: " in report[0]
    found = [int(i) for i in np.unique(want[0])]
    assert all(f"{i} {('bg', 'a', 'b')[i]} (" in report[0] for i in found)
    assert report[1].endswith("% pixels have matched semantic labels (the frozen graph).")
    assert float(report[1].split("%")[0]) >= 99.0
    # A Keras reference (what --checkpoint_path and --saved_model_dir compare with); the
    # graph pads to an aligned size, as predict_probabilities does.
    keras = check_on_image(labels, tmp_path / "x.png",
                           lambda x: predict_probabilities(model, tf.cast(x, tf.float32)),
                           "the Keras model")
    assert keras.endswith("% pixels have matched semantic labels (the Keras model).")
    assert float(keras.splitlines()[1].split("%")[0]) >= 99.0


def test_bad_tensor_names_say_what_the_graph_has(frozen):
    _, (path, _) = frozen
    graph_def = load_graph_def(path)
    with pytest.raises(ValueError) as error:
        convert_frozen_graph(graph_def, "MobilenetV2/MobilenetV2/input:0", "ArgMax:0", (33, 33),
                             source="g.pb")
    assert str(error.value) == (
        "--input_tensor_name=MobilenetV2/MobilenetV2/input:0: no such tensor in g.pb; "
        "placeholders: ImageTensor:0; outputs: SemanticPredictions:0, SemanticProbabilities:0")
    # An internal input from which the output cannot be computed alone (it crops to the
    # image size, read from ImageTensor).
    internal = next(n.name for n in graph_def.node if n.name.endswith("preprocess_1/sub"))
    with pytest.raises(ValueError, match="is computed from ImageTensor, not only from "
                                         "--input_tensor_name"):
        convert_frozen_graph(graph_def, f"{internal}:0", "ArgMax:0", (33, 33))
    with pytest.raises(ValueError, match="int8 calibrates a Keras model"):
        convert_frozen_graph(graph_def, None, "ArgMax:0", (33, 33), "int8")


def fake_quantized_graph() -> tf.compat.v1.GraphDef:
    """A tiny graph as quantization-aware training leaves it: FakeQuant around each op."""
    graph = tf.Graph()
    with graph.as_default():
        image = tf.compat.v1.placeholder(tf.uint8, [1, 9, 9, 3], name="ImageTensor")
        x = tf.cast(image, tf.float32) / 127.5 - 1.0
        x = tf.quantization.fake_quant_with_min_max_args(x, -1.0, 1.0, name="backbone_input")
        kernel = np.random.default_rng(0).normal(size=(3, 3, 3, 4)).astype("float32")
        kernel = tf.quantization.fake_quant_with_min_max_args(tf.constant(kernel), -3.0, 3.0)
        y = tf.quantization.fake_quant_with_min_max_args(
            tf.nn.conv2d(x, kernel, 1, "SAME"), -12.0, 12.0)
        tf.argmax(y, -1, name="ArgMax")
    return graph.as_graph_def()


def test_fake_quantized_graph_becomes_uint8_as_the_original(tmp_path):
    from ai_edge_litert.interpreter import Interpreter

    graph_def = fake_quantized_graph()
    flatbuffer = convert_frozen_graph(graph_def, "backbone_input:0", "ArgMax:0", (9, 9))
    interpreter = Interpreter(model_content=flatbuffer)
    detail = interpreter.get_input_details()[0]
    assert detail["dtype"] == np.uint8
    assert detail["quantization"][1] == 128  # stats (127.5, 127.5): q 128 means 0.0
    image = images((9, 9), seed=6)[0]
    report = check_on_image(flatbuffer, write_png(tmp_path / "q.png", image[0]),
                            graph_reference(graph_def, "backbone_input:0", "ArgMax:0"),
                            "the frozen graph")
    agree = float(report.splitlines()[1].split("%")[0])
    assert agree >= 90.0, report  # uint8 arithmetic against the float graph
    with pytest.raises(ValueError, match="already quantized"):
        convert_frozen_graph(graph_def, "backbone_input:0", "ArgMax:0", (9, 9), "dynamic")


def run_cli(script: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / script), *args], capture_output=True,
                          text=True, env={**os.environ, **ENV}, timeout=300)


@pytest.mark.slow
def test_original_command_lines(model, tmp_path):
    weights = save_model(model, tmp_path / "m.weights.h5")
    pb = tmp_path / "export" / "frozen_inference_graph.pb"
    export = run_cli("export/export_model.py", f"--checkpoint_path={weights}",
                     f"--export_path={pb}", "--crop_size=513", "--crop_size=513",
                     "--inference_scales=1.0", f"--num_classes={NUM_CLASSES}",
                     "--model_variant=mobilenet_v2", "--logtostderr")
    assert export.returncode == 0, export.stderr[-2000:]
    assert f"exported {pb}" in export.stdout
    assert sorted(p.name for p in pb.parent.iterdir()) == ["frozen_inference_graph.pb"]
    image = images((40, 52), seed=8)[0]
    # As the original, --crop_size pads to the crop and sizes the image pooling from it.
    server = SegmentationServer(load_model(weights, crop_size=(513, 513)))
    np.testing.assert_array_equal(run_frozen_graph(pb, image)[0],
                                  server.serve(tf.constant(image))["semantic_predictions"])

    tflite = tmp_path / "m.tflite"
    convert = run_cli("export/convert_to_tflite.py", f"--quantized_graph_def_path={pb}",
                      "--input_tensor_name=ImageTensor:0",
                      "--output_tensor_name=SemanticPredictions:0", "--crop_size=33",
                      "--crop_size=33", f"--output_tflite_path={tflite}",
                      f"--test_image_path={write_png(tmp_path / 't.png', image[0])}")
    assert convert.returncode == 0, convert.stderr[-2000:]
    assert tflite.stat().st_size > 10_000
    lines = convert.stdout.strip().splitlines()
    assert lines[0].startswith(f"wrote {tflite}")
    assert "resized to 33x33: output [1, 33, 33] int32; classes found: " in lines[-2]
    assert lines[-1].endswith("pixels have matched semantic labels (the frozen graph).")

    bad = run_cli("export/convert_to_tflite.py", f"--quantized_graph_def_path={pb}",
                  "--input_tensor_name=ImageTensor:0", "--output_tensor_name=Bogus:0",
                  f"--output_tflite_path={tmp_path / 'bad.tflite'}")
    assert bad.returncode == 1
    assert bad.stderr.strip().splitlines()[-1] == (
        f"convert_to_tflite: --output_tensor_name=Bogus:0: no such tensor in {pb}; "
        "placeholders: ImageTensor:0; outputs: SemanticPredictions:0, SemanticProbabilities:0")
    assert not (tmp_path / "bad.tflite").exists()


@pytest.mark.slow
def test_quantized_export_of_a_float_checkpoint_is_refused_in_one_line(tmp_path):
    """--quantize_delay_step=0 on a float checkpoint builds the quantization-aware model,
    whose ranges that checkpoint never learned: refused, nothing written."""
    save_model(build_deeplab(num_classes=3, depth_multiplier=0.35), tmp_path / "m.weights.h5")
    export = tmp_path / "export"
    result = run_cli("export/export_model.py", f"--checkpoint_path={tmp_path / 'm.weights.h5'}",
                     f"--export_path={export / 'frozen_inference_graph.pb'}",
                     "--quantize_delay_step=0")
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("export_model: the checkpoint has no learned quantization ranges")
    assert "saved before --quantize_delay_step=0" in last
    assert not export.exists()
