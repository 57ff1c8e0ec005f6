#!/usr/bin/env bash
# Oracle: the ORIGINAL TF1 DeepLab (tensorflow/models research/deeplab, run under TF 2.20's
# tf.compat.v1 with tf_slim) against deeplab-keras, same weights, same inputs, the same
# flags given to both. Prints one PASS/FAIL line per check (INFO for a deliberate
# difference, with its measured size). See README.md.
#
#   ORIG_GIT_DIR=<mirror of github:smurpheus/models> bash scripts/oracle/run.sh
#   ORACLE_VARIANTS="mnv2" bash scripts/oracle/run.sh  # a subset of mnv2 mnv2_dm05 x65 r101 pnas pnas_head hnas
#   ORACLE_CASES="adam topk" bash scripts/oracle/run.sh    # only the cases whose tag matches
#   ORACLE_CONTROL=0 ...                                  # no noise-floor runs (fixed tolerances)
#   ORACLE_REUSE=1 ...        # reuse the original's results in $ORACLE_OUT: rerun our side only
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=${ORACLE_OUT:-/tmp/oracle_out}
ORIG_PY=${ORIG_PY:-/tmp/oraclenv/bin/python}
OURS_PY=${OURS_PY:-$HERE/../../.venv/bin/python}
VARIANTS=${ORACLE_VARIANTS:-mnv2 mnv2_dm05 x65 r101 pnas pnas_head hnas}
CASES=${ORACLE_CASES:-}
export TF_ENABLE_ONEDNN_OPTS=0 TF_CPP_MIN_LOG_LEVEL=3 PYTHONWARNINGS=ignore
LOG=$OUT/logs; mkdir -p "$LOG"
status=0

# --- setup ---------------------------------------------------------------------------------
if [ ! -x "$ORIG_PY" ]; then
  python3 -m venv /tmp/oraclenv && /tmp/oraclenv/bin/pip install -q 'tensorflow==2.20.*' \
    tf-slim==1.1.0 'tf-keras==2.20.*' numpy || exit 2
fi
[ -x "$OURS_PY" ] || { echo "no project venv at $OURS_PY (set OURS_PY)"; exit 2; }
if [ ! -f "${ORIG_DIR:-/tmp/orig}/ORIG_COMMIT" ]; then bash "$HERE/setup_orig.sh" || exit 2; fi

# --- the model flags of each checkpoint, as the original's scripts give them ---------------
declare -A MODEL=(
  [mnv2]="--model_variant=mobilenet_v2 --output_stride=16"
  [mnv2_dm05]="--model_variant=mobilenet_v2 --output_stride=16 --depth_multiplier=0.5"
  [x65]="--model_variant=xception_65 --atrous_rates=6 --atrous_rates=12 --atrous_rates=18
         --output_stride=16 --decoder_output_stride=4"
  [r101]="--model_variant=resnet_v1_101_beta --atrous_rates=6 --atrous_rates=12
          --atrous_rates=18 --output_stride=16"
  [pnas]="--model_variant=nas_pnasnet --atrous_rates=6 --atrous_rates=12 --atrous_rates=18
          --output_stride=16 --decoder_output_stride=4"
  [pnas_head]="--model_variant=nas_pnasnet --output_stride=16 --nas_use_classification_head=true
               --nas_stem_output_num_conv_filters=8"
  [hnas]="--model_variant=nas_hnasnet --atrous_rates=12 --atrous_rates=24 --atrous_rates=36
          --output_stride=8 --decoder_output_stride=4"
)
# lr 1e-6: the trajectories stay linear over 3 steps (README: at 0.007 the original
# differs from itself by 10-14 % after 3 steps), so each rule's difference shows cleanly.
POLY="--base_learning_rate=0.000001 --training_number_of_steps=10 --learning_policy=poly"

wanted() { [ -z "$CASES" ] || [[ " $CASES " == *" $1 "* ]]; }
reused() { [ "${ORACLE_REUSE:-0}" = 1 ] && [ -f "$1" ]; }
orig() { local d=$1; shift; "$ORIG_PY" "$HERE/orig_side.py" "$@" --out "$d" >>"$LOG/orig.log" 2>&1 \
           || { echo "FAIL orig_side $1 $* (see $LOG/orig.log)"; status=1; return 1; }; }
ours() { "$OURS_PY" "$HERE/ours_side.py" "$@" >>"$LOG/ours.log" 2>&1 \
           || { echo "FAIL ours_side $1 $* (see $LOG/ours.log)"; status=1; return 1; }; }
cmp_() { "$ORIG_PY" "$HERE/compare.py" "$@" 2>>"$LOG/compare.log" || status=1; }

# forward VARIANT TAG "EVAL FLAGS"
forward() {
  local v=$1 tag=$2 ev=$3 d=$OUT/$1
  wanted "$tag" || return 0
  reused "$d/orig_forward_$tag.npz" || orig "$d" forward --model "${MODEL[$v]}" --tag "$tag" \
    --eval "$ev" && \
    ours forward --model "${MODEL[$v]}" --tag "$tag" --eval "$ev" --out "$d" && \
    cmp_ "$d" forward "$tag"
}

# train VARIANT TAG "MODEL FLAGS" "TRAIN FLAGS" STEPS ["INFO: why we differ on purpose"]
# (RACE=x before it: the original's per-scale BN updates race; see compare.py)
train() {
  local v=$1 tag=$2 model=$3 flags=$4 steps=$5 info=${6:-} d=$OUT/$1 c=""
  wanted "$tag" || return 0
  reused "$d/orig_train_$tag.npz" || \
    orig "$d" train --model "$model" --flags "$flags" --tag "$tag" --steps "$steps" || return
  ours train --model "$model" --flags "$flags" --tag "$tag" --steps "$steps" --out "$d" || return
  if reused "$d.ctl/orig_train_$tag.npz"; then
    c="--control $d.ctl"
  elif [ "${ORACLE_CONTROL:-1}" = 1 ]; then
    # The original again with oneDNN's kernels: its distance to itself is the noise floor.
    mkdir -p "$d.ctl"; ln -sfn "$d/inputs.npz" "$d.ctl/inputs.npz"; ln -sfn "$d/ckpt" "$d.ctl/ckpt"
    TF_ENABLE_ONEDNN_OPTS=1 "$ORIG_PY" "$HERE/orig_side.py" train --model "$model" \
      --flags "$flags" --tag "$tag" --steps "$steps" --out "$d.ctl" >>"$LOG/orig.log" 2>&1 \
      && c="--control $d.ctl" || { echo "FAIL control $tag"; status=1; }
  fi
  cmp_ "$d" train "$tag" $c --info "$info" --race "${RACE:-0}"
}

for v in $VARIANTS; do
  d=$OUT/$v; mkdir -p "$d"
  echo "== $v: shared checkpoint (${MODEL[$v]//$'\n'/ })"
  if [ ! -f "$d/ckpt/model.ckpt.index" ]; then orig "$d" init --model "${MODEL[$v]}" || continue; fi
  forward "$v" single ""
  m=${MODEL[$v]}
  case $v in
  mnv2)
    forward mnv2 ms_flip "--eval_scales=0.5,0.75,1.0,1.25,1.5,1.75 --add_flipped_images"
    train mnv2 poly "$m" "$POLY" 3
    train mnv2 frozen_bn_mult10 "$m" "$POLY --fine_tune_batch_norm=false
      --last_layer_gradient_multiplier=10" 3
    train mnv2 constant_lr_mult10 "$m" "--base_learning_rate=0.000001
      --training_number_of_steps=1000000 --last_layer_gradient_multiplier=10" 3
    train mnv2 labels_downsampled "$m" "$POLY --upsample_logits=false" 1
    train mnv2 lr0.007 "$m" "--base_learning_rate=0.007 --training_number_of_steps=10" 1
    # 0.003 = 1 - MobileNetV2's BN decay: the size of the original's update-order race.
    RACE=0.003 train mnv2 pyramid_max "$m" "$POLY --image_pyramid=0.5 --image_pyramid=1.0
      --merge_method=max" 3
    RACE=0.003 train mnv2 pyramid_avg "$m" "$POLY --image_pyramid=0.75 --image_pyramid=1.0
      --image_pyramid=1.25 --merge_method=avg" 3
    train mnv2 top_k_mining "$m" "$POLY --top_k_percent_pixels=0.5
      --hard_example_mining_step=2" 3
    weights=""; for i in $(seq 0 20); do weights+=" --label_weights=$(( i % 4 + 1 )).5"; done
    train mnv2 label_weights "$m" "$POLY $weights" 3
    train mnv2 slow_start "$m" "$POLY --slow_start_step=2 --slow_start_learning_rate=0.0000001" 3
    train mnv2 step_policy "$m" "--base_learning_rate=0.000001 --learning_policy=step
      --learning_rate_decay_step=1 --learning_rate_decay_factor=0.5" 3
    # The original's Adam runs at a constant --adam_learning_rate; ours follows the policy,
    # constant here with --learning_power=0.
    train mnv2 adam "$m" "--optimizer=adam --adam_learning_rate=0.000001 --learning_power=0
      --training_number_of_steps=10" 3
    train mnv2 adam_poly "$m" "--optimizer=adam --adam_learning_rate=0.000001
      --training_number_of_steps=10" 3 "--adam_learning_rate follows --learning_policy"
    train mnv2 output_stride_8 "--model_variant=mobilenet_v2 --output_stride=8" "$POLY" 3
    train mnv2 two_clones_frozen_bn "$m" "$POLY --num_clones=2 --clone_on_cpu
      --fine_tune_batch_norm=false" 3
    train mnv2 two_clones "$m" "$POLY --num_clones=2 --clone_on_cpu" 3 \
      "BN synchronised over the replicas (the original's clones normalise each half-batch)"
    ;;
  mnv2_dm05) train mnv2_dm05 dm05_poly "$m" "$POLY" 3 ;;
  x65) [ "${ORACLE_X65_TRAIN:-1}" = 1 ] && train x65 x65_poly "$m" "$POLY" 3 ;;
  r101)
    os8="--model_variant=resnet_v1_101_beta --atrous_rates=12 --atrous_rates=24
      --atrous_rates=36 --output_stride=8 --multi_grid=1 --multi_grid=2 --multi_grid=4"
    train r101 r101_os8_multi_grid "$os8" "$POLY" 3
    train r101 r101_os8_multi_grid_frozen_bn "$os8" "$POLY --fine_tune_batch_norm=false" 3
    ;;
  # NAS cells at the default --drop_path_keep_prob=1 (drop path is random: tests pin it).
  pnas)
    train pnas pnas_poly "$m" "$POLY" 3
    ;;
  pnas_head) train pnas_head pnas_head_poly "$m" "$POLY" 3 ;;
  hnas) train hnas hnas_poly "$m" "$POLY" 3 ;;
  esac
done
echo "oracle: $([ $status = 0 ] && echo ALL PASS || echo SOME FAIL) (logs in $LOG)"
exit $status
