#!/usr/bin/env bash
# Shared by run_i2t.sh and run_t2i.sh: retrieval evaluation for direction $1 on ./dataset/retrieve.
set -euo pipefail
task=$1
prefix=$2
shift 2
echo "================ Kaleido-BERT ${task} Retrieval ==============="
PYTHON=${PYTHON:-python3}
DATA_DIR=${DATA_DIR:-./dataset}
CKPT_DIR=${CKPT_DIR:-./checkpoints}
ls -d "$DATA_DIR"/retrieve/${prefix}* > "$DATA_DIR"/eval_${task}_list.list_csv

exec "$PYTHON" -m kaleido_tf.apps.pretrain_main \
  --workerGPU="${WORKER_GPU:-4}" \
  --type="${task}" \
  --mode=predict \
  --predict_input_fp="${PREDICT_INPUT:-$DATA_DIR/eval_${task}_list.list_csv}" \
  --predict_batch_size="${PREDICT_BATCH_SIZE:-64}" \
  --input_sequence_length="${INPUT_SEQUENCE_LENGTH:-64}" \
  --output_dir="${OUTPUT_DIR:-$CKPT_DIR/retrieve/${task}}" \
  --pretrain_model_name_or_path="${PRETRAIN_MODEL:-pai-kaleidobert-base-en}" \
  --image_feature_size=131072 \
  --predict_checkpoint_path="${PREDICT_CHECKPOINT:-$CKPT_DIR/pretrained/kaleidobert.ckpt-50683}" \
  --input_schema="${INPUT_SCHEMA:-retrieval}" \
  "$@"
