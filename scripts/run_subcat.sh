#!/usr/bin/env bash
# Subcategory finetuning (122 classes by default; --num_classes or --label_map to change).
exec "$(dirname "$0")/finetune_common.sh" subcatepred "$@"
