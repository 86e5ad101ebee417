#!/usr/bin/env bash
# Kaleido-BERT pretraining, with the flags of the original script.
# Reads ./dataset/pretrain/pretrain_train* and pretrain_valid* (TSV bundles, or TFRecord shard directories
# made by kaleido-csv2tfrecord / kaleido-preprocess), writes ./checkpoints/pretrained.
# Every setting can be overridden from the environment, e.g. WORKER_GPU=1 TRAIN_BATCH_SIZE=8 NUM_EPOCHS=1.
set -euo pipefail
echo "================ Kaleido-BERT Pretraining ==============="
PYTHON=${PYTHON:-python3}
DATA_DIR=${DATA_DIR:-./dataset}
CKPT_DIR=${CKPT_DIR:-./checkpoints}
ls -d "$DATA_DIR"/pretrain/pretrain_train* > "$DATA_DIR"/train_list.list_csv
ls -d "$DATA_DIR"/pretrain/pretrain_valid* > "$DATA_DIR"/dev_list.list_csv
TRAIN_INPUT=${TRAIN_INPUT:-$DATA_DIR/train_list.list_csv}
EVAL_INPUT=${EVAL_INPUT:-$DATA_DIR/dev_list.list_csv}

exec "$PYTHON" -m kaleido_tf.apps.pretrain_main \
  --workerGPU="${WORKER_GPU:-4}" \
  --mode=train_and_evaluate \
  --train_input_fp="$TRAIN_INPUT" \
  --eval_input_fp="$EVAL_INPUT" \
  --pretrain_model_name_or_path="${PRETRAIN_MODEL:-pai-kaleidobert-base-en}" \
  --input_sequence_length="${INPUT_SEQUENCE_LENGTH:-64}" \
  --train_batch_size="${TRAIN_BATCH_SIZE:-64}" \
  --num_epochs="${NUM_EPOCHS:-25}" \
  --model_dir="${MODEL_DIR:-$CKPT_DIR/pretrained}" \
  --learning_rate="${LEARNING_RATE:-1e-4}" \
  --image_feature_size=131072 \
  --input_schema="${INPUT_SCHEMA:-pretrain}" \
  "$@"
