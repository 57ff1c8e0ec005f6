"""Weights of the original release's TFLite files inside our models, proven on real images."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from conftest import reference_file

from deeplab.evaluation.metrics import confusion_matrix, segmentation_metrics
from deeplab.inference.colormap import color_image_to_label
from deeplab.inference.probabilities import fit_size, segment_whole_image
from deeplab.model import DeepLab
from deeplab.weights.tflite_import import (
    import_tflite_weights,
    infer_model_config,
    read_folded_layers,
)

GPU_257 = "tflite/deeplabv3_257_mv_gpu.tflite"
QUANT_513 = "tflite/deeplabv3_mnv2_pascal_quant.tflite"
QUANT_DM05 = "tflite/deeplabv3_mnv2_dm05_pascal_quant.tflite"
VAINF = ["0", "1", "20", "23", "60", "114"]


def read_rgb(path):
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert image is not None, path
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def voc_pairs(reference_dir):
    """The seven real VOC pairs: (RGB image, class-id label with 255 = void)."""
    pairs = []
    for n in VAINF:
        image = read_rgb(reference_file(reference_dir, f"voc/vainf_val513/{n}_image.png"))
        target = read_rgb(reference_file(reference_dir, f"voc/vainf_val513/{n}_target.png"))
        pairs.append((image, color_image_to_label(target, "pascal")))
    jpg = reference_file(reference_dir, "voc/icevision/2007_000063.jpg")
    png = reference_file(reference_dir, "voc/icevision/2007_000063_SegmentationClass.png")
    from PIL import Image

    pairs.append((read_rgb(jpg), np.asarray(Image.open(png))))  # palette PNG: indices
    return pairs


def interpreter(path):
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_path=str(path), num_threads=2)
    it.allocate_tensors()
    return it


def run(it, array):
    it.set_tensor(it.get_input_details()[0]["index"], array)
    it.invoke()
    return it.get_tensor(it.get_output_details()[0]["index"])


@pytest.fixture(scope="module")
def gpu_model(reference_dir):
    path = reference_file(reference_dir, GPU_257)
    config = infer_model_config(path)
    model = DeepLab(config)
    report = import_tflite_weights(model, path)
    return path, config, model, report


def test_gpu_257_config_is_read_from_the_file(gpu_model):
    _, config, model, report = gpu_model
    # 16-channel stem: depth multiplier 0.5; 33x33 features for 257: output stride 8.
    assert (config.depth_multiplier, config.output_stride, config.num_classes) == (0.5, 8, 21)
    assert config.crop_size == (257, 257)
    assert len(report.matched) == 55 and not report.unused_in_file and not report.missing_in_model
    assert model.backbone.output["features"].shape[-1] == 160


def test_gpu_257_logits_match_the_reference_interpreter(gpu_model, reference_dir):
    path, _, model, _ = gpu_model
    it = interpreter(path)
    for image, _ in voc_pairs(reference_dir):
        h, w = fit_size(*image.shape[:2], 257)
        canvas = np.full((257, 257, 3), 127.5, np.float32)
        canvas[:h, :w] = cv2.resize(image, (w, h), interpolation=cv2.INTER_LINEAR)
        reference = run(it, ((canvas - 127.5) / 127.5)[None])  # input sub_7 is preprocessed
        ours = np.asarray(model(canvas[None]))
        logit_range = reference.max() - reference.min()
        assert np.abs(ours - reference).max() <= 1e-3 * logit_range
        assert (ours.argmax(-1) == reference.argmax(-1)).mean() >= 0.999


@pytest.fixture(scope="module", params=[(QUANT_513, 1.0), (QUANT_DM05, 0.5)],
                ids=["depth_1.0", "depth_0.5"])
def quant_results(request, reference_dir):
    """(label, our float import's labels, the reference uint8 interpreter's labels) of each
    VOC pair, for the 1.0 and the 0.5 depth-multiplier files."""
    file, depth_multiplier = request.param
    path = reference_file(reference_dir, file)
    config = infer_model_config(path)
    assert (config.depth_multiplier, config.output_stride) == (depth_multiplier, 16)
    model = DeepLab(config)
    import_tflite_weights(model, path)
    it = interpreter(path)

    def reference_labels(canvas):
        return run(it, canvas[None])[0]

    def our_labels(canvas):
        return np.asarray(model(canvas[None].astype(np.float32)))[0].argmax(-1)

    results = []
    for image, label in voc_pairs(reference_dir):
        ours = segment_whole_image(our_labels, image, 513)
        reference = segment_whole_image(reference_labels, image, 513)
        results.append((label, ours, reference))
    return results


def _miou(results, index):
    matrix = sum(confusion_matrix(r[0], r[index], 21) for r in results)
    return segmentation_metrics(matrix)["miou"]


# Float (ours) vs uint8 arithmetic on 2007_000063, whose chair borders the background with
# close classes, and over all seven pairs: measured 97.6 % / 99.5 % for the 1.0 file and
# 92.3 % / 98.7 % for the 0.5 one (its smaller margins flip more boundary pixels).
CHAIR_AGREEMENT = {1.0: 0.97, 0.5: 0.92}
MEAN_AGREEMENT = {1.0: 0.99, 0.5: 0.985}


def test_quantised_513_import_agrees_with_the_reference_interpreter(quant_results, request):
    depth_multiplier = request.node.callspec.params["quant_results"][1]
    our_miou, reference_miou = _miou(quant_results, 1), _miou(quant_results, 2)
    agreement = [(ours == reference).mean() for _, ours, reference in quant_results]
    print(f"VOC pairs mIoU (depth {depth_multiplier}): ours (float, imported) {our_miou:.4f}, "
          f"reference uint8 interpreter {reference_miou:.4f}; pixel agreement "
          f"{np.round(agreement, 4)}")
    assert reference_miou > 0.85  # verified_notes.md: 0.904 with its own resize protocol
    # Dequantised float vs uint8 arithmetic: pixels differ only where classes are close
    # (measured 99.6-99.9 % on the six vainf crops for both files).
    assert min(agreement[:6]) >= 0.99
    assert agreement[6] >= CHAIR_AGREEMENT[depth_multiplier]
    assert np.mean(agreement) >= MEAN_AGREEMENT[depth_multiplier]
    assert abs(our_miou - reference_miou) < 0.005


@pytest.mark.xfail(
    strict=True,
    reason="measured 0.9139 (ours, dequantised float) vs 0.9165 (uint8 reference): the file "
    "was trained with quantisation in the loop, and the gap sits on one image "
    "(2007_000063, chair vs background)",
)
@pytest.mark.parametrize("quant_results", [(QUANT_513, 1.0)], ids=["depth_1.0"],
                         indirect=True)
def test_quantised_513_float_import_reaches_the_reference_miou(quant_results):
    assert _miou(quant_results, 1) >= _miou(quant_results, 2)


def test_coral_golden_bird(reference_dir):
    from PIL import Image

    path = reference_file(reference_dir, QUANT_513)
    model = DeepLab(infer_model_config(path))
    import_tflite_weights(model, path)
    image = np.asarray(Image.open(reference_file(reference_dir,
                                                 "golden_coral/bird_segmentation.bmp")))
    mask = np.asarray(Image.open(reference_file(reference_dir,
                                                "golden_coral/bird_segmentation_mask.bmp")))
    prediction = np.asarray(model(image[None, ..., :3].astype(np.float32)))[0].argmax(-1)
    bird = 3
    ours, truth = prediction == bird, mask == bird
    iou = (ours & truth).sum() / (ours | truth).sum()
    assert (prediction == mask).mean() >= 0.95
    assert iou > 0.9


def test_quantised_weights_are_dequantised(reference_dir):
    layers = read_folded_layers(reference_file(reference_dir, QUANT_513))
    conv = layers["MobilenetV2/Conv"]
    assert conv["weights"].dtype == np.float32 and conv["weights"].shape == (32, 3, 3, 3)
    # uint8 163 with scale 0.024886 and zero point 146 (first stored value).
    assert conv["weights"].ravel()[0] == pytest.approx((163 - 146) * 0.024886127561330795, 1e-6)
    assert conv["bias"][0] == pytest.approx(1209 * 0.00019442287157289684, 1e-6)


def test_mismatched_config_is_a_clear_error(reference_dir):
    path = reference_file(reference_dir, GPU_257)
    wrong = DeepLab(infer_model_config(reference_file(reference_dir, QUANT_513)))
    with pytest.raises(ValueError, match="do not fit the model"):
        import_tflite_weights(wrong, path)


@pytest.mark.slow
def test_coral_golden_bird_with_our_int8_export(reference_dir):
    """The imported float model, exported by us to full-integer TFLite, still passes Coral's
    golden test (calibrated on the six real VOC crops)."""
    from PIL import Image

    from deeplab.export.calibration import fit_to_canvas
    from deeplab.export.tflite import convert_to_tflite

    path = reference_file(reference_dir, QUANT_513)
    model = DeepLab(infer_model_config(path))
    import_tflite_weights(model, path)
    calibration = [fit_to_canvas(image, (513, 513)) for image, _ in voc_pairs(reference_dir)]
    flatbuffer = convert_to_tflite(model, (513, 513), "int8", "argmax", lambda: calibration)
    it = interpreter_from_bytes(flatbuffer)
    image = np.asarray(Image.open(reference_file(reference_dir,
                                                 "golden_coral/bird_segmentation.bmp")))
    mask = np.asarray(Image.open(reference_file(reference_dir,
                                                "golden_coral/bird_segmentation_mask.bmp")))
    assert it.get_input_details()[0]["dtype"] == np.uint8
    prediction = run(it, image[None, ..., :3])[0]
    ours, truth = prediction == 3, mask == 3
    assert (prediction == mask).mean() >= 0.95
    assert (ours & truth).sum() / (ours | truth).sum() > 0.9


def interpreter_from_bytes(flatbuffer):
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_content=flatbuffer, num_threads=2)
    it.allocate_tensors()
    return it


EDGETPU_SLIM = "tflite/deeplab_mobilenet_edgetpu_slim_cityscapes_quant.tflite"


@pytest.fixture(scope="module")
def edgetpu(reference_dir):
    """The EdgeTPU-slim Cityscapes file imported into our float model, with Coral's golden
    Cityscapes image and mask, and both models' labels on it."""
    from PIL import Image

    path = reference_file(reference_dir, EDGETPU_SLIM)
    config = infer_model_config(path)
    model = DeepLab(config)
    report = import_tflite_weights(model, path)
    image = np.asarray(Image.open(reference_file(
        reference_dir, "golden_coral/cityscapes_segmentation.bmp")).convert("RGB"))
    mask = np.asarray(Image.open(reference_file(
        reference_dir, "golden_coral/cityscapes_segmentation_mask.bmp")))
    # The file's uint8 input is the raw pixel (scale 1/128, zero point 128 = its [-1, 1]).
    reference = run(interpreter(path), image[None])[0]
    ours = np.asarray(model(image[None].astype(np.float32)))[0].argmax(-1)
    return dict(path=path, config=config, model=model, report=report, image=image,
                mask=mask, reference=reference, ours=ours)


def test_edgetpu_slim_config_is_read_from_the_file(edgetpu):
    config, report = edgetpu["config"], edgetpu["report"]
    # 24-channel stem: depth multiplier 0.75; 33x33 features for 513: output stride 16.
    assert (config.model_variant, config.depth_multiplier, config.output_stride) == (
        "mobilenet_edgetpu", 0.75, 16)
    assert (config.aspp_convs_filters, config.num_classes, config.crop_size) == (
        128, 19, (513, 513))
    assert len(report.matched) == 62 and not report.unused_in_file
    assert not report.missing_in_model


def test_edgetpu_slim_import_agrees_with_the_reference_interpreter(edgetpu):
    ours, reference, mask = edgetpu["ours"], edgetpu["reference"], edgetpu["mask"]
    agreement = (ours == reference).mean()
    ours_vs_mask, reference_vs_mask = (ours == mask).mean(), (reference == mask).mean()
    print(f"EdgeTPU-slim Cityscapes golden image: ours (float import) vs reference uint8 "
          f"interpreter {agreement:.4f}; vs Coral's mask: ours {ours_vs_mask:.4f}, "
          f"reference {reference_vs_mask:.4f}")
    assert agreement >= 0.98  # measured 0.9913
    assert reference_vs_mask > 0.9  # measured 0.9212: the mask is the file's own output
    assert abs(ours_vs_mask - reference_vs_mask) < 0.01


@pytest.mark.slow
def test_edgetpu_slim_our_int8_export(edgetpu, reference_dir):
    """Our full-integer export of the imported model, calibrated on the real VOC pairs (not
    on the test image), against our float model on the golden image."""
    from deeplab.export.calibration import fit_to_canvas
    from deeplab.export.tflite import convert_to_tflite, op_names

    calibration = [fit_to_canvas(image, (513, 513)) for image, _ in voc_pairs(reference_dir)]
    flatbuffer = convert_to_tflite(edgetpu["model"], (513, 513), "int8", "argmax",
                                   lambda: calibration)
    ops = op_names(flatbuffer)
    assert "SPACE_TO_BATCH_ND" not in ops and "DEQUANTIZE" not in ops
    assert not any(op.startswith(("FLEX", "CUSTOM")) for op in ops)
    it = interpreter_from_bytes(flatbuffer)
    assert it.get_input_details()[0]["dtype"] == np.uint8
    labels = run(it, edgetpu["image"][None])[0]
    agreement = (labels == edgetpu["ours"]).mean()
    print(f"our int8 export vs our float model: {agreement:.4f}; vs mask "
          f"{(labels == edgetpu['mask']).mean():.4f}")
    assert agreement >= 0.97


@pytest.mark.slow
def test_import_weights_keeps_the_data_set_s_names_for_predict(reference_dir, tmp_path):
    """import_weights --dataset stores the class names and colours with the weights; predict
    then names its classes from them (and a data set of another class count is refused)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parent.parent
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}

    def run(*args):
        return subprocess.run([sys.executable, *args], capture_output=True, text=True,
                              env=env, cwd=repo, timeout=300)

    model = reference_file(reference_dir, GPU_257)
    weights = tmp_path / "gpu.weights.h5"
    refused = run("scripts/import_weights.py", "--source=tflite", f"--input={model}",
                  f"--output={weights}", "--dataset=cityscapes")
    assert refused.returncode == 1 and refused.stderr.strip().splitlines()[-1] == (
        "import_weights: --dataset cityscapes has 19 classes, the imported model 21")
    done = run("scripts/import_weights.py", "--source=tflite", f"--input={model}",
               f"--output={weights}", "--dataset=pascal_voc_seg")
    assert done.returncode == 0, done.stderr[-2000:]
    bird = reference_file(reference_dir, "golden_coral/bird.bmp")
    result = run("-m", "deeplab.cli.predict", f"--checkpoint_path={weights}", f"--input={bird}",
                 f"--output_dir={tmp_path / 'out'}", "--max_size=257")
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"class names and colours: {tmp_path / 'gpu.config.json'}" in result.stdout
    assert "bird.bmp: background" in result.stdout and "bird " in result.stdout
