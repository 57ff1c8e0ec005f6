# Sourced by quickstart.sh and readme_eval_pictures.sh: where the quickstart's data and run are.
WORK="${DEEPLAB_WORKSPACE:-workspace}"
DATA="$WORK/datasets/synthetic/tfrecord"
EXP="$WORK/exp/quickstart"
