#!/usr/bin/env bash
# Fetches the released Kaleido-BERT checkpoint (kaleidobert.ckpt-50683 + config.json) into
# checkpoints/pretrained/ and converts it to checkpoints/pai-kaleidobert-base-en/, the directory the
# model-zoo name `pai-kaleidobert-base-en` resolves to. Run from the repository root.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
source "$here/fetch_common.sh"
CKPT_DIR=${CKPT_DIR:-./checkpoints}
echo "=========== Fetch the pretrained checkpoint ==========="
fetch_files "$RELEASE_URL/datasets/checkpoint" "$here/checkpoint/checkpoint_files.txt" "$CKPT_DIR/pretrained"
echo "=========== Convert it for kaleido_tf ==========="
${PYTHON:-python3} -m kaleido_tf.apps.convert_main --tf1_checkpoint="$CKPT_DIR/pretrained/kaleidobert.ckpt-50683" \
  --output_dir="$CKPT_DIR/pai-kaleidobert-base-en"
echo "Done: --pretrain_model_name_or_path=pai-kaleidobert-base-en now resolves to $CKPT_DIR/pai-kaleidobert-base-en"
