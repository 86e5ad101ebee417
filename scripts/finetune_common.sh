#!/usr/bin/env bash
# Shared by run_cat.sh and run_subcat.sh: finetune Kaleido-BERT on ./dataset/finetune for task $1.
set -euo pipefail
task=$1
shift
echo "================ Kaleido-BERT ${task} Finetune ==============="
PYTHON=${PYTHON:-python3}
DATA_DIR=${DATA_DIR:-./dataset}
CKPT_DIR=${CKPT_DIR:-./checkpoints}
ls -d "$DATA_DIR"/finetune/finetune_train_* > "$DATA_DIR"/train_${task}_list.list_csv
ls -d "$DATA_DIR"/finetune/finetune_valid_* > "$DATA_DIR"/eval_${task}_list.list_csv

exec "$PYTHON" -m kaleido_tf.apps.finetune_main \
  --workerGPU="${WORKER_GPU:-4}" \
  --mode=train_and_evaluate \
  --task="${task}" \
  --train_input_fp="${TRAIN_INPUT:-$DATA_DIR/train_${task}_list.list_csv}" \
  --eval_input_fp="${EVAL_INPUT:-$DATA_DIR/eval_${task}_list.list_csv}" \
  --pretrain_model_name_or_path="${PRETRAIN_MODEL:-$CKPT_DIR/pretrained/kaleidobert.ckpt-50683}" \
  --input_sequence_length="${INPUT_SEQUENCE_LENGTH:-64}" \
  --train_batch_size="${TRAIN_BATCH_SIZE:-64}" \
  --num_epochs="${NUM_EPOCHS:-20}" \
  --model_dir="${MODEL_DIR:-$CKPT_DIR/classification/${task}}" \
  --learning_rate="${LEARNING_RATE:-2e-5}" \
  --output_dir="${OUTPUT_DIR:-$CKPT_DIR/classification/${task}_out}" \
  --input_schema="${INPUT_SCHEMA:-finetune}" \
  "$@"
