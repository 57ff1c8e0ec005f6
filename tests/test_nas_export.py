"""A NAS model exported: the TF Serving SavedModel and a float TFLite file compute what the
Keras model does (its own file, so the test runs beside the NAS training test)."""

from __future__ import annotations

import numpy as np
import pytest
from layer_test_utils import he_scale_weights
from test_export import run_tflite

from deeplab.model import build_deeplab


@pytest.mark.slow  # ~1 min: a NAS graph of ~600 layers traced for each format
def test_nas_exports_to_saved_model_and_tflite(tmp_path):
    from deeplab.export.saved_model import export_saved_model
    from deeplab.export.tflite import convert_to_tflite
    from deeplab.inference.segmenters import SavedModelSegmenter

    model = he_scale_weights(build_deeplab(
        model_variant="nas_pnasnet", output_stride=16, num_classes=6,
        nas_stem_output_num_conv_filters=4, atrous_rates=(2,), decoder_output_stride=(4,),
        crop_size=(33, 33)), seed=4)
    image = np.random.default_rng(2).integers(0, 256, (33, 33, 3), dtype=np.uint8)
    logits = np.asarray(model(image[None]))
    export_saved_model(model, tmp_path / "export")
    served = SavedModelSegmenter(tmp_path / "export")
    np.testing.assert_array_equal(served.labels(image), logits[0].argmax(-1))
    flatbuffer = convert_to_tflite(model, (33, 33), "float", "logits")
    got = run_tflite(flatbuffer, image[None])
    assert np.abs(got - logits).max() <= 1e-3 * (logits.max() - logits.min())
