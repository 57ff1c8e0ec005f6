#!/usr/bin/env bash
# The README's pictures of where a model fails, made from the quickstart run (run
# `bash scripts/quickstart.sh` first, with the same DEEPLAB_WORKSPACE): evaluates it with
# --save_worst=4 and copies the confusion matrix and the worst image's panel to docs/images/.
#   DEEPLAB_WORKSPACE=/path bash scripts/readme_eval_pictures.sh   (default ./workspace)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/venv.sh .
PY="$VENV/bin/python"
source scripts/quickstart_paths.sh
OUT="$EXP/eval_pictures"
if [ ! -d "$EXP/train" ]; then
  echo "no quickstart run in $EXP/train: run bash scripts/quickstart.sh first" >&2
  exit 1
fi
rm -rf "$OUT"
"$PY" -m deeplab.cli.eval --checkpoint_dir="$EXP/train" --dataset_dir="$DATA" \
  --eval_logdir="$OUT" --eval_split=val --save_worst=4
mkdir -p docs/images
cp "$(ls "$OUT"/confusion-*.png)" docs/images/quickstart_confusion.png
cp "$(ls "$OUT"/worst-*/01_*.png)" docs/images/quickstart_worst.png
echo "wrote docs/images/quickstart_confusion.png and docs/images/quickstart_worst.png"
