#!/usr/bin/env bash
# Retrieval finetuning (ITC + ITM on in-batch hard negatives, docs/retrieval.md) on ./dataset/finetune: every
# example is a matching (text, image) pair. Then embed and search a catalog with `kaleido-index`.
export MODEL_DIR=${MODEL_DIR:-${CKPT_DIR:-./checkpoints}/retrieval/model}
export OUTPUT_DIR=${OUTPUT_DIR:-${CKPT_DIR:-./checkpoints}/retrieval/out}
exec "$(dirname "$0")/finetune_common.sh" retrieval "$@"
