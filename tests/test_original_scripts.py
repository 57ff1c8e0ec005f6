"""The original's local_test.sh and local_test_mobilenetv2.sh, flags verbatim, end to end.

Each script's train → eval → vis → export sequence runs with the original's command lines;
only the binaries' names, the paths and the step count differ (NUM_ITERATIONS=1 instead of
10: an Xception-65 step at 513x513, batch 4, takes ~10 s on 2 CPU cores). The data are the
synthetic records without a dataset.json, so, as in the original, --dataset defaults to
pascal_voc_seg (21 classes, ignore 255); the initial checkpoints are
TF1 checkpoints in the original's variable names, written from our models (the model-zoo
tarballs cannot be downloaded here).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import run_like_the_original_demo
from data_test_utils import records_without_descriptor

from deeplab.model import build_deeplab
from deeplab.weights.checkpoint_export import export_tf1_checkpoint

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent

# local_test_mobilenetv2.sh from "# Train 10 iterations." on (binaries and NUM_ITERATIONS
# changed).
MOBILENET_V2 = r"""
NUM_ITERATIONS=1
"${DEEPLAB_TRAIN}" \
  --logtostderr \
  --train_split="trainval" \
  --model_variant="mobilenet_v2" \
  --output_stride=16 \
  --train_crop_size=513 \
  --train_crop_size=513 \
  --train_batch_size=4 \
  --training_number_of_steps="${NUM_ITERATIONS}" \
  --fine_tune_batch_norm=true \
  --tf_initial_checkpoint="${INIT_FOLDER}/${CKPT_NAME}/model.ckpt-30000" \
  --train_logdir="${TRAIN_LOGDIR}" \
  --dataset_dir="${PASCAL_DATASET}"

"${DEEPLAB_EVAL}" \
  --logtostderr \
  --eval_split="val" \
  --model_variant="mobilenet_v2" \
  --eval_crop_size=513 \
  --eval_crop_size=513 \
  --checkpoint_dir="${TRAIN_LOGDIR}" \
  --eval_logdir="${EVAL_LOGDIR}" \
  --dataset_dir="${PASCAL_DATASET}" \
  --max_number_of_evaluations=1

"${DEEPLAB_VIS}" \
  --logtostderr \
  --vis_split="val" \
  --model_variant="mobilenet_v2" \
  --vis_crop_size=513 \
  --vis_crop_size=513 \
  --checkpoint_dir="${TRAIN_LOGDIR}" \
  --vis_logdir="${VIS_LOGDIR}" \
  --dataset_dir="${PASCAL_DATASET}" \
  --max_number_of_iterations=1

CKPT_PATH="${TRAIN_LOGDIR}/model.ckpt-${NUM_ITERATIONS}"
EXPORT_PATH="${EXPORT_DIR}/frozen_inference_graph.pb"

python "${EXPORT_DIR_SCRIPTS}"/export_model.py \
  --logtostderr \
  --checkpoint_path="${CKPT_PATH}" \
  --export_path="${EXPORT_PATH}" \
  --model_variant="mobilenet_v2" \
  --num_classes=21 \
  --crop_size=513 \
  --crop_size=513 \
  --inference_scales=1.0
"""

# local_test.sh from "# Train 10 iterations." on (binaries and NUM_ITERATIONS changed).
XCEPTION_65 = r"""
NUM_ITERATIONS=1
"${DEEPLAB_TRAIN}" \
  --logtostderr \
  --train_split="trainval" \
  --model_variant="xception_65" \
  --atrous_rates=6 \
  --atrous_rates=12 \
  --atrous_rates=18 \
  --output_stride=16 \
  --decoder_output_stride=4 \
  --train_crop_size="513,513" \
  --train_batch_size=4 \
  --training_number_of_steps="${NUM_ITERATIONS}" \
  --fine_tune_batch_norm=true \
  --tf_initial_checkpoint="${INIT_FOLDER}/deeplabv3_pascal_train_aug/model.ckpt" \
  --train_logdir="${TRAIN_LOGDIR}" \
  --dataset_dir="${PASCAL_DATASET}"

"${DEEPLAB_EVAL}" \
  --logtostderr \
  --eval_split="val" \
  --model_variant="xception_65" \
  --atrous_rates=6 \
  --atrous_rates=12 \
  --atrous_rates=18 \
  --output_stride=16 \
  --decoder_output_stride=4 \
  --eval_crop_size="513,513" \
  --checkpoint_dir="${TRAIN_LOGDIR}" \
  --eval_logdir="${EVAL_LOGDIR}" \
  --dataset_dir="${PASCAL_DATASET}" \
  --max_number_of_evaluations=1

"${DEEPLAB_VIS}" \
  --logtostderr \
  --vis_split="val" \
  --model_variant="xception_65" \
  --atrous_rates=6 \
  --atrous_rates=12 \
  --atrous_rates=18 \
  --output_stride=16 \
  --decoder_output_stride=4 \
  --vis_crop_size="513,513" \
  --checkpoint_dir="${TRAIN_LOGDIR}" \
  --vis_logdir="${VIS_LOGDIR}" \
  --dataset_dir="${PASCAL_DATASET}" \
  --max_number_of_iterations=1

CKPT_PATH="${TRAIN_LOGDIR}/model.ckpt-${NUM_ITERATIONS}"
EXPORT_PATH="${EXPORT_DIR}/frozen_inference_graph.pb"

python "${EXPORT_DIR_SCRIPTS}"/export_model.py \
  --logtostderr \
  --checkpoint_path="${CKPT_PATH}" \
  --export_path="${EXPORT_PATH}" \
  --model_variant="xception_65" \
  --atrous_rates=6 \
  --atrous_rates=12 \
  --atrous_rates=18 \
  --output_stride=16 \
  --decoder_output_stride=4 \
  --num_classes=21 \
  --crop_size=513 \
  --crop_size=513 \
  --inference_scales=1.0
"""

SCRIPTS = {
    "local_test_mobilenetv2.sh": (MOBILENET_V2, "deeplabv3_mnv2_pascal_train_aug/model.ckpt-30000",
                                  dict(model_variant="mobilenet_v2", output_stride=16)),
    "local_test.sh": (XCEPTION_65, "deeplabv3_pascal_train_aug/model.ckpt",
                      dict(model_variant="xception_65", atrous_rates=(6, 12, 18),
                           output_stride=16, decoder_output_stride=(4,))),
}


@pytest.fixture(scope="module")
def pascal_dataset(tmp_path_factory) -> Path:
    """Synthetic records under the original's split names, without a dataset.json."""
    return records_without_descriptor(tmp_path_factory.mktemp("pascal_voc_seg") / "tfrecord",
                                      {"trainval": 4, "val": 1}, 64, 64)


@pytest.mark.slow
@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_original_local_test_runs_unchanged(script, pascal_dataset, tmp_path):
    """Over 60 s for local_test.sh: Xception-65 traced for training, eval, vis and export,
    each at the original's 513x513 crop."""
    commands, init_checkpoint, model_fields = SCRIPTS[script]
    exp = tmp_path / "exp" / "train_on_trainval_set"
    folders = {name: exp / name.split("_")[0].lower() for name in
               ("TRAIN_LOGDIR", "EVAL_LOGDIR", "VIS_LOGDIR", "EXPORT_DIR")}
    init_folder = tmp_path / "init_models"
    initial = build_deeplab(num_classes=21, **model_fields)
    prefix = export_tf1_checkpoint(initial, init_folder / init_checkpoint, global_step=30000)
    env = dict(os.environ, PASCAL_DATASET=str(pascal_dataset), INIT_FOLDER=str(init_folder),
               CKPT_NAME="deeplabv3_mnv2_pascal_train_aug",
               EXPORT_DIR_SCRIPTS=str(REPO / "export"),
               DEEPLAB_TRAIN=str(BIN / "deeplab-train"), DEEPLAB_EVAL=str(BIN / "deeplab-eval"),
               DEEPLAB_VIS=str(BIN / "deeplab-vis"), PATH=f"{BIN}:{os.environ['PATH']}",
               TF_CPP_MIN_LOG_LEVEL="2", **{k: str(v) for k, v in folders.items()})
    for folder in folders.values():  # the original's mkdir -p
        folder.mkdir(parents=True)
    result = subprocess.run(["bash", "-e", "-c", commands], env=env, capture_output=True,
                            text=True, timeout=1800, cwd=tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]

    # Train: started from the TF1 checkpoint and saved step 1.
    assert "imported" in output and prefix in output, output[-3000:]
    assert (folders["TRAIN_LOGDIR"] / "ckpt-1.index").is_file()
    # Eval: the pascal_voc_seg descriptor (21 classes), the crop as the original.
    metrics = json.loads((folders["EVAL_LOGDIR"] / "metrics.json").read_text())
    assert len(metrics["per_class_iou"]) == 21 and metrics["step"] == 1
    assert metrics["eval_crop_size"] == [513, 513]
    assert 0.0 <= metrics["miou"] <= 1.0
    # Vis: the original's file names, at the images' size.
    results = folders["VIS_LOGDIR"] / "segmentation_results"
    assert sorted(p.name for p in results.glob("*_prediction.png")) == ["000000_prediction.png"]
    # Export: the original's frozen graph, runnable by its demo code.
    graph_path = folders["EXPORT_DIR"] / "frozen_inference_graph.pb"
    image = np.random.default_rng(0).integers(0, 255, (1, 70, 90, 3), dtype=np.uint8)
    labels, _ = run_like_the_original_demo(graph_path, image)
    assert labels.shape == (1, 70, 90) and labels.max() < 21
