"""Quantization-aware training on real images: the original's uint8 MobileNetV2 DeepLabv3,
imported, fine-tuned with --quantize_delay_step=0 on the shared VOC pairs, exported to int8."""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest
from conftest import reference_file
from test_weights_tflite import QUANT_513, _miou, interpreter, run, voc_pairs

from deeplab.inference.probabilities import segment_whole_image
from deeplab.model import DeepLab
from deeplab.weights.tflite_import import import_tflite_weights, infer_model_config

pytestmark = pytest.mark.slow
QAT_STEPS = 8


@pytest.fixture(scope="module")
def qat_export(reference_dir, tmp_path_factory):
    """(our QAT int8 flatbuffer, the original's interpreter, the log lines)."""
    from deeplab.data.converters.image_folder import convert_image_folder
    from deeplab.export.tflite import convert_to_tflite
    from deeplab.runs.store import save_model
    from deeplab.training.train_config import TrainConfig
    from deeplab.training.trainer import Trainer

    work = tmp_path_factory.mktemp("qat_voc")
    path = reference_file(reference_dir, QUANT_513)
    config = infer_model_config(path)
    imported = DeepLab(config)
    import_tflite_weights(imported, path)
    initial = save_model(imported, work / "imported.weights.h5")
    # The pairs as an image folder -> records (all in train).
    for folder in ("images", "masks"):
        (work / folder).mkdir()
    for index, (image, label) in enumerate(voc_pairs(reference_dir)):
        cv2.imwrite(str(work / "images" / f"{index}.png"), image[..., ::-1])
        cv2.imwrite(str(work / "masks" / f"{index}.png"), label.astype(np.uint8))
    convert_image_folder(str(work / "images"), str(work / "masks"), str(work / "records"),
                         num_classes=21, val_fraction=0.0)
    # The original's recipe at a small learning rate: BN frozen (the file's BN is folded),
    # quantization from the first step, no scale augmentation, eight steps of two crops.
    # As the issue asks, the fine-tune sees the same seven pairs the test then measures on
    # (at 1e-6 the int8 file lost 0.6 points: the file's weights were tuned to the original's
    # per-tensor uint8 arithmetic; 3e-5 lets them adapt to ours).
    model_config = dataclasses.replace(config, quantize_delay_step=0, fine_tune_batch_norm=False)
    train = TrainConfig(model_config, str(work / "records"), str(work / "train"),
                        train_crop_size=(513, 513), train_batch_size=2,
                        training_number_of_steps=QAT_STEPS, base_learning_rate=3e-5,
                        min_scale_factor=1.0, max_scale_factor=1.0, log_steps=1,
                        tf_initial_checkpoint=str(initial), seed=0)
    lines = []
    trainer = Trainer(train, log=lines.append)
    trainer.train()
    flatbuffer = convert_to_tflite(trainer.model, (513, 513), "int8")
    return flatbuffer, interpreter(path), lines


def labels_of(it):
    def segment(canvas):
        return run(it, canvas[None].astype(np.uint8))[0]

    return segment


def test_qat_int8_agrees_with_the_original_uint8_file(qat_export, reference_dir):
    from ai_edge_litert.interpreter import Interpreter

    flatbuffer, original, lines = qat_export
    assert any(line.startswith("step 1: quantization-aware training from here on")
               for line in lines)
    ours = Interpreter(model_content=flatbuffer, num_threads=2)
    ours.allocate_tensors()
    assert ours.get_input_details()[0]["dtype"] == np.uint8
    results, agreement = [], []
    for image, label in voc_pairs(reference_dir):
        mine = segment_whole_image(labels_of(ours), image, 513)
        theirs = segment_whole_image(labels_of(original), image, 513)
        results.append((label, mine, theirs))
        agreement.append(float(np.mean(mine == theirs)))
    from PIL import Image

    bird = np.asarray(Image.open(reference_file(reference_dir,
                                                "golden_coral/bird_segmentation.bmp")))
    bird = np.ascontiguousarray(bird[None, ..., :3])
    agreement.append(float(np.mean(run(ours, bird) == run(original, bird))))
    our_miou, original_miou = _miou(results, 1), _miou(results, 2)
    print(f"QAT int8 vs the original uint8 file, pixel agreement per image (6 VOC crops, "
          f"2007_000063, Coral bird): {np.round(agreement, 4)}; VOC pairs mIoU: ours "
          f"{100 * our_miou:.2f} %, original {100 * original_miou:.2f} %")
    assert min(agreement) >= 0.97
    assert abs(our_miou - original_miou) <= 0.005
