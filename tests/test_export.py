"""SavedModel (TF Serving) and TFLite exports: parity with Keras, layout, errors, CLIs."""

from __future__ import annotations

import subprocess
import sys

import cv2
import numpy as np
import pytest
import tensorflow as tf
from layer_test_utils import he_scale_weights

from deeplab.export.saved_model import export_saved_model, keras_model_from_saved_model
from deeplab.export.serving import SegmentationServer
from deeplab.export.tflite import convert_to_tflite, op_names, write_tflite
from deeplab.inference.probabilities import aligned_size, predict_probabilities
from deeplab.model import build_deeplab
from deeplab.runs.store import save_model

REPO = __import__("pathlib").Path(__file__).resolve().parent.parent


def small_model(**fields):
    defaults = dict(num_classes=4, depth_multiplier=0.5, atrous_rates=(1, 2),
                    decoder_output_stride=(4,))
    return build_deeplab(**{**defaults, **fields})


def images(*sizes, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (1, h, w, 3), dtype=np.uint8) for h, w in sizes]


@pytest.fixture(scope="module")
def model():
    # He-scaled weights: a fresh model's logits are ~1e-15, every pixel a tie, and
    # comparing predictions between formats would prove nothing.
    return he_scale_weights(small_model(), seed=1)


@pytest.fixture(scope="module")
def exported(model, tmp_path_factory):
    base = tmp_path_factory.mktemp("export")
    path = export_saved_model(model, base, batch_crop_size=(33, 33))
    return base, path, tf.saved_model.load(str(path))


def test_aligned_size():
    assert [aligned_size(s, 16) for s in (1, 17, 18, 33, 500, 513)] == [1, 17, 33, 33, 513, 513]


def test_saved_model_matches_keras_on_several_sizes(model, exported):
    _, _, loaded = exported
    serve = loaded.signatures["serving_default"]
    for image in images((33, 33), (50, 71), (17, 120)):
        out = serve(image=tf.constant(image))
        want = predict_probabilities(model, tf.cast(image, tf.float32))
        np.testing.assert_allclose(out["semantic_probabilities"], want, atol=1e-5)
        np.testing.assert_array_equal(out["semantic_predictions"],
                                      np.argmax(np.asarray(want), -1))
        assert out["semantic_predictions"].dtype == tf.int32
        assert out["semantic_predictions"].shape == image.shape[:3]
        assert len(np.unique(out["semantic_predictions"])) > 1  # not a tie everywhere


def _dilated_native_depthwise(graph_def) -> list[str]:
    """DepthwiseConv2dNative nodes with dilation > 1 in a GraphDef and its functions."""
    nodes = list(graph_def.node)
    for function in graph_def.library.function:
        nodes += list(function.node_def)
    return [n.name for n in nodes if n.op == "DepthwiseConv2dNative"
            and max(n.attr["dilations"].list.i or [1]) > 1]


def test_saved_model_has_no_machine_dependent_atrous_op(exported):
    """A SavedModel exported on any machine serves on any other (CPU, ARM, GPU)."""
    _, path, _ = exported
    graph_def = _saved_graph_def(path)
    assert _dilated_native_depthwise(graph_def) == []
    ops = {n.op for f in graph_def.library.function for n in f.node_def}
    assert "SpaceToBatchND" in ops  # the model's rate-2 depthwise convs, in portable form


def _saved_graph_def(path):
    from tensorflow.core.protobuf import saved_model_pb2

    return saved_model_pb2.SavedModel.FromString(
        (path / "saved_model.pb").read_bytes()).meta_graphs[0].graph_def


@pytest.mark.slow
def test_tflite_trace_has_native_dilated_ops_and_no_space_to_batch(tmp_path):
    """The converter is handed single dilated ops; it need not re-fuse space-to-batch."""
    from deeplab.export.tflite import write_conversion_saved_model
    from deeplab.ops import uses_native_dilation

    write_conversion_saved_model(small_model(crop_size=(33, 33)), (33, 33), "logits", tmp_path)
    assert not uses_native_dilation()
    graph_def = _saved_graph_def(tmp_path)
    # MobileNetV2 at OS 16: expanded_conv_14..16 at rate 2, and the ASPP branch of rate 2.
    assert len(_dilated_native_depthwise(graph_def)) == 4
    ops = {n.op for f in graph_def.library.function for n in f.node_def}
    assert "SpaceToBatchND" not in ops


def test_padding_is_invisible_at_aligned_sizes(model):
    """At a k*OS+1 size no padding happens: serving equals a plain model call."""
    image = images((33, 49))[0].astype(np.float32)
    probabilities = predict_probabilities(model, tf.constant(image))
    np.testing.assert_allclose(probabilities, tf.nn.softmax(model(image)), atol=1e-6)


def test_versioned_layout_and_encoded_signature(model, exported):
    base, path, loaded = exported
    assert path == base / "1" and (path / "saved_model.pb").is_file()
    assert set(loaded.signatures) == {"serving_default", "serving_encoded", "serving_batch"}
    image = images((40, 30))[0]
    png = cv2.imencode(".png", cv2.cvtColor(image[0], cv2.COLOR_RGB2BGR))[1].tobytes()
    encoded = loaded.signatures["serving_encoded"](image_bytes=tf.constant(png))
    default = loaded.signatures["serving_default"](image=tf.constant(image))
    np.testing.assert_array_equal(encoded["semantic_predictions"],
                                  default["semantic_predictions"])
    batch = loaded.signatures["serving_batch"](images=tf.constant(np.concatenate(
        images((33, 33), (33, 33), seed=3))))
    assert batch["semantic_predictions"].shape == (2, 33, 33)
    rebuilt = keras_model_from_saved_model(path)
    assert rebuilt.config == model.config
    with pytest.raises(FileExistsError, match="immutable"):
        export_saved_model(model, base, version=1)


def test_encoded_signature_applies_the_exif_orientation(exported):
    """A phone JPEG stored sideways is segmented the way a viewer shows it."""
    from test_exif import as_viewers_show, encoded

    _, _, loaded = exported
    photo = encoded(images((20, 36))[0][0], 6, "PNG")  # lossless, so both inputs are equal
    upright = as_viewers_show(photo)
    assert upright.shape == (36, 20, 3)
    served = loaded.signatures["serving_encoded"](image_bytes=tf.constant(photo))
    direct = loaded.signatures["serving_default"](image=tf.constant(upright[None]))
    assert served["semantic_predictions"].shape == (1, 36, 20)
    np.testing.assert_array_equal(served["semantic_predictions"],
                                  direct["semantic_predictions"])


@pytest.mark.parametrize(
    "bad, message",
    [
        (np.zeros((4, 4, 3), np.uint8), "shape \\[1, height, width, 3\\]"),
        (np.zeros((1, 0, 5, 3), np.uint8), "got an empty image"),
        (np.zeros((1, 5, 5, 4), np.uint8), "must be 3 \\(RGB\\)"),
    ],
)
def test_bad_serving_input_says_what_is_expected(model, bad, message):
    server = SegmentationServer(model)
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        server.serve(tf.constant(bad))


def test_float_input_is_rejected_by_the_signature(exported):
    _, _, loaded = exported
    with pytest.raises(Exception, match="uint8"):
        loaded.signatures["serving_default"](image=tf.constant(np.zeros((1, 4, 4, 3), "float32")))


def test_tiny_and_huge_images_give_input_size_outputs(model):
    server = SegmentationServer(model, max_resize_value=129, min_resize_value=129)
    for h, w in [(1, 1), (4000, 3000)]:
        out = server.serve(tf.zeros((1, h, w, 3), tf.uint8))
        assert out["semantic_predictions"].shape == (1, h, w)
        assert out["semantic_probabilities"].shape == (1, h, w, 4)


def test_multi_scale_and_flip_average_one_softmax(model):
    image = tf.cast(images((33, 33))[0], tf.float32)
    both = predict_probabilities(model, image, (0.5, 1.0), add_flipped_images=True)
    single = predict_probabilities(model, image)
    flipped = tf.reverse(predict_probabilities(model, tf.reverse(image, [2])), [2])
    half = predict_probabilities(model, image, (0.5,))
    half_flipped = tf.reverse(predict_probabilities(model, tf.reverse(image, [2]), (0.5,)), [2])
    np.testing.assert_allclose(both, (single + flipped + half + half_flipped) / 4, atol=1e-5)
    np.testing.assert_allclose(tf.reduce_sum(both, -1), 1.0, atol=1e-5)


# === TFLite ===
def run_tflite(flatbuffer, image):
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=flatbuffer, num_threads=2)
    interpreter.allocate_tensors()
    detail = interpreter.get_input_details()[0]
    interpreter.set_tensor(detail["index"], image.astype(detail["dtype"]))
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])


def test_tflite_float_logits_match_keras_and_use_native_dilation():
    model = he_scale_weights(small_model(crop_size=(65, 65), atrous_rates=(2, 4)), seed=2)
    flatbuffer = convert_to_tflite(model, (65, 65), "float", "logits")
    ops = op_names(flatbuffer)
    assert "SPACE_TO_BATCH_ND" not in ops and "BATCH_TO_SPACE_ND" not in ops
    assert not any(op.startswith(("FLEX", "CUSTOM")) for op in ops)
    assert "RSQRT" not in ops  # BatchNorm folded into the convs
    for image in images((65, 65), (65, 65), seed=1):
        want = np.asarray(model(image.astype(np.float32)))
        got = run_tflite(flatbuffer, image)
        assert np.abs(got - want).max() <= 1e-3 * (want.max() - want.min())


@pytest.mark.slow
def test_tflite_argmax_float16_and_dynamic(tmp_path):
    model = he_scale_weights(small_model(crop_size=(33, 33)), seed=3)
    image = images((33, 33), seed=2)[0]
    want = np.asarray(model(image.astype(np.float32)))
    argmax = convert_to_tflite(model, (33, 33), "float", "argmax")
    got = run_tflite(argmax, image)
    assert got.dtype == np.int32 and got.shape == (1, 33, 33)
    np.testing.assert_array_equal(got, want.argmax(-1))
    assert len(np.unique(got)) > 1
    half = run_tflite(convert_to_tflite(model, (33, 33), "float16", "logits"), image)
    assert np.abs(half - want).max() <= 1e-2 * (want.max() - want.min())
    dynamic = convert_to_tflite(model, (33, 33), "dynamic", "argmax")
    assert len(dynamic) < 0.5 * len(argmax)
    path = write_tflite(argmax, tmp_path / "m.tflite", ["a", "b", "c", "d"])
    assert path.read_bytes() == argmax
    assert (tmp_path / "m.labels.txt").read_text() == "a\nb\nc\nd\n"


def test_tflite_int8_needs_calibration():
    with pytest.raises(ValueError, match="calibration"):
        convert_to_tflite(small_model(), (33, 33), "int8")


def _run_script(script: str, *args: str) -> subprocess.CompletedProcess:
    env = {"TF_CPP_MIN_LOG_LEVEL": "3", "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, str(REPO / script), *args], capture_output=True,
                          text=True, env=env, timeout=300)


def test_export_scripts_refuse_in_one_line(tmp_path):
    weights = save_model(small_model(num_classes=3), tmp_path / "m.weights.h5")
    missing = tmp_path / "nothing"
    export = _run_script("export/export_model.py", f"--checkpoint_path={missing}",
                         f"--export_path={tmp_path / 'sm'}")
    assert export.returncode == 1 and "Traceback" not in export.stderr
    assert export.stderr.strip().splitlines()[-1] == (
        f"export_model: {missing}: not a .weights.h5 file, a training directory or a "
        "checkpoint prefix (ckpt-N, without .index / .data-*).")
    assert not (tmp_path / "sm").exists()
    bad = _run_script("export/convert_to_tflite.py", f"--checkpoint_path={weights}",
                      "--quantization=int8", f"--output_tflite_path={tmp_path / 'q.tflite'}")
    assert bad.returncode != 0
    assert bad.stderr.strip().splitlines()[-1] == (
        "convert_to_tflite: --quantization=int8 needs --dataset_dir (calibration images), "
        "unless the model was trained with --quantize_delay_step")


@pytest.mark.slow
def test_export_scripts_write_a_saved_model_then_tflite_from_it(tmp_path):
    weights = save_model(small_model(num_classes=3), tmp_path / "m.weights.h5")
    export = _run_script("export/export_model.py", f"--checkpoint_path={weights}",
                         f"--export_path={tmp_path / 'sm'}", "--output_stride=8")
    assert export.returncode == 0, export.stderr[-2000:]
    assert (tmp_path / "sm" / "1" / "saved_model.pb").is_file()
    rebuilt = keras_model_from_saved_model(tmp_path / "sm" / "1")
    assert rebuilt.config.output_stride == 8  # the flag overrode the trained config
    convert = _run_script("export/convert_to_tflite.py",
                          f"--saved_model_dir={tmp_path / 'sm' / '1'}", "--crop_size=33",
                          "--crop_size=33", f"--output_tflite_path={tmp_path / 'm.tflite'}")
    assert convert.returncode == 0, convert.stderr[-2000:]
    assert (tmp_path / "m.tflite").stat().st_size > 10_000


@pytest.mark.slow
def test_saved_model_cli_runs_the_export(exported, tmp_path):
    """The export works with TF's own serving tooling, not only with tf.saved_model.load."""
    from pathlib import Path

    _, path, _ = exported
    cli = Path(sys.executable).parent / "saved_model_cli"
    np.save(tmp_path / "image.npy", images((21, 34))[0])
    result = subprocess.run(
        [str(cli), "run", "--dir", str(path), "--tag_set", "serve", "--signature_def",
         "serving_default", "--inputs", f"image={tmp_path / 'image.npy'}",
         "--outdir", str(tmp_path / "out")],
        capture_output=True, text=True, env={"TF_CPP_MIN_LOG_LEVEL": "3"}, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    predictions = np.load(tmp_path / "out" / "semantic_predictions.npy")
    assert predictions.shape == (1, 21, 34) and predictions.dtype == np.int32


def test_internal_padding_uses_the_per_channel_mean_pixel():
    """ResNet-v1 subtracts the ImageNet mean: padded pixels must be that mean, not 127.5."""
    model = build_deeplab(model_variant="resnet_v1_50", num_classes=3)
    image = np.random.default_rng(0).uniform(0, 255, (1, 20, 20, 3)).astype("float32")
    padded = np.empty((1, 33, 33, 3), "float32")
    padded[:] = model.config.backbone_spec.mean_pixel
    padded[:, :20, :20] = image
    want = tf.nn.softmax(model(padded))[:, :20, :20]
    np.testing.assert_allclose(predict_probabilities(model, tf.constant(image)), want, atol=1e-5)


def huge_png(path, height=12000, width=12000):
    """A valid smooth PNG of height x width RGB pixels (a few MB), written row by row so
    the test never holds the decoded image."""
    import struct
    import zlib

    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    row = b"\x00" + bytes(range(256)) * (3 * width // 256) + bytes(3 * width % 256)
    compress = zlib.compressobj(1)
    idat = b"".join(compress.compress(row) for _ in range(height)) + compress.flush()
    path.write_bytes(b"\x89PNG\r\n\x1a\n"
                     + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
                     + chunk(b"IDAT", idat) + chunk(b"IEND", b""))
    return path


SERVE_HUGE = r"""
import sys
sys.path.insert(0, sys.argv[3])
import numpy as np, tensorflow as tf
from memory_probe import peak_rss_mb
loaded = tf.saved_model.load(sys.argv[1])
encoded = open(sys.argv[2], "rb").read()
before = peak_rss_mb()
for name, kwargs in (("serving_encoded", dict(image_bytes=tf.constant(encoded))),
                     ("serving_default", dict(image=tf.zeros([1, 4097, 4097, 3], tf.uint8)))):
    try:
        loaded.signatures[name](**kwargs)
        print(name, "served")
    except tf.errors.InvalidArgumentError as error:
        print(name, "refused:", next(line for line in error.message.splitlines()
                                     if "assertion failed" in line).strip())
print("peak growth MB", peak_rss_mb() - before)
"""


@pytest.mark.slow
def test_a_huge_image_is_refused_before_it_takes_the_server_s_memory(exported, tmp_path):
    """A 12000x12000 PNG (a few MB on the wire, 432 MB decoded, ~28 GB through the model)
    is refused from its header by the default limit of 4096x4096 pixels; the process grows
    by the 50 MB uint8 tensor at most, not by gigabytes."""
    _, path, _ = exported
    png = huge_png(tmp_path / "huge.png")
    assert png.stat().st_size < 10e6
    result = subprocess.run([sys.executable, "-c", SERVE_HUGE, str(path), str(png),
                             str(REPO / "tests")],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.splitlines()
    limit = ("the image has more than 16777216 pixels, the limit of this export "
             "(export_model --max_image_pixels); send it resized, or export with a higher "
             "limit. Its height and width:")
    assert lines[0] == (f"serving_encoded refused: assertion failed: [serving_encoded: "
                        f"{limit}] [12000 12000]")
    assert lines[1] == (f"serving_default refused: assertion failed: [serving_default: "
                        f"{limit}] [4097 4097]")
    assert float(lines[2].split()[-1]) < 200


def _refusal(call) -> str:
    """The assertion line a refused request gets."""
    with pytest.raises(tf.errors.InvalidArgumentError) as error:
        call()
    return next(line for line in error.value.message.splitlines()
                if "assertion failed" in line).strip()


def test_every_bad_request_is_refused_in_words_before_anything_is_decoded(exported):
    """A 33-byte WebP declaring 16383x16383 (805 MB decoded) is refused from its header by
    the pixel limit; bytes of no format it decodes, a vector of encoded images and an HxW
    image each get their own message (a Pad error and "batch size must be 1" before)."""
    from test_inputs_and_names import webp_header

    _, _, loaded = exported
    encoded = loaded.signatures["serving_encoded"]
    default = loaded.signatures["serving_default"]
    assert _refusal(lambda: encoded(image_bytes=tf.constant(webp_header(16383, 16383)))) == (
        "assertion failed: [serving_encoded: the image has more than 16777216 pixels, the "
        "limit of this export (export_model --max_image_pixels); send it resized, or export "
        "with a higher limit. Its height and width:] [16383 16383]")
    assert _refusal(lambda: encoded(image_bytes=tf.constant(b"%PDF-1.4 not an image"))) == (
        "assertion failed: [serving_encoded: not a JPEG, PNG, GIF, BMP or WebP image (its "
        "first bytes say neither); send one of those]")
    png = cv2.imencode(".png", np.zeros((4, 4, 3), np.uint8))[1].tobytes()
    assert _refusal(lambda: encoded(image_bytes=tf.constant([png, png]))) == (
        "assertion failed: [serving_encoded expects one encoded image (a scalar string); send "
        "one request per image, or decoded images of one size to serving_batch. The shape "
        "sent:] [2]")
    assert _refusal(lambda: default(image=tf.zeros([6, 7], tf.uint8))) == (
        "assertion failed: [serving_default expects a uint8 image tensor of shape [1, height, "
        "width, 3]; got a tensor of another rank (an [height, width, 3] image needs the batch "
        "dimension, a grey [height, width] one the 3 channels too). Its shape:] [6 7]")
