#!/usr/bin/env bash
# Category finetuning (48 classes by default; --num_classes or --label_map to change).
exec "$(dirname "$0")/finetune_common.sh" catepred "$@"
