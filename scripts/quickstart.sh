#!/usr/bin/env bash
# The main job on the embedded default, end to end, on the CPU:
# installs deeplab-keras into a fresh virtualenv, builds a MobileNetV2 DeepLabv3+, runs it on a
# generated image and prints its summary, parameter count and multiply-adds.
# (Training on the synthetic data set joins this script when the train binary lands.)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/venv.sh .
"$VENV/bin/python" scripts/model_summary.py \
  --model_variant=mobilenet_v2 --output_stride=16 --decoder_output_stride=4 --input_size=513
