#!/usr/bin/env bash
# The main job end to end on the embedded default, on the CPU: installs deeplab-keras into a
# virtualenv, builds the synthetic data set, trains a MobileNetV2 (depth multiplier 0.5)
# DeepLabv3+ from scratch, evaluates it, writes overlays, and prints the mIoU. The compute
# (data, train, eval, vis) is sized for 2 cores of a slow CPU: under 5 minutes on an AVX2-only
# x86 with TensorFlow's portable kernels.
#   DEEPLAB_WORKSPACE=/path bash scripts/quickstart.sh   (default ./workspace)
# The training flags are in scripts/quickstart.flags. BN decay is 0.9 instead of the original's
# 0.997/0.9997 because 300 steps are too few for slower moving averages to settle. The images
# are 64x64 so that the 65x65 training crops see whole images, as evaluation does.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/venv.sh .
PY="$VENV/bin/python"
source scripts/quickstart_paths.sh

start=$SECONDS
echo "== 1/4 synthetic data set -> $DATA"
"$PY" datasets/make_synthetic_data.py --output_dir="$DATA" --height=64 --width=64
echo "== 2/4 training -> $EXP/train"
"$PY" -m deeplab.cli.train --flagfile=scripts/quickstart.flags \
  --dataset_dir="$DATA" --train_logdir="$EXP/train"
echo "== 3/4 evaluation -> $EXP/eval"
"$PY" -m deeplab.cli.eval --checkpoint_dir="$EXP/train" --dataset_dir="$DATA" \
  --eval_logdir="$EXP/eval" --eval_split=val
echo "== 4/4 pictures -> $EXP/vis"
"$PY" -m deeplab.cli.vis --checkpoint_dir="$EXP/train" --dataset_dir="$DATA" \
  --vis_logdir="$EXP/vis" --max_number_of_images=12
"$PY" - "$EXP/eval/metrics.json" <<'PYEOF'
import json, sys
metrics = json.load(open(sys.argv[1]))
print(f"\nquickstart: val mIoU {100 * metrics['miou']:.2f}% "
      f"(pixel accuracy {100 * metrics['pixel_accuracy']:.2f}%)")
PYEOF
echo "overlays: $EXP/vis/segmentation_results/*_overlay.png"
echo "data, training, evaluation and pictures took $((SECONDS - start)) s"
