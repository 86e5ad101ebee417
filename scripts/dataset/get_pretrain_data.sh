#!/usr/bin/env bash
# Fetches the released, preprocessed Fashion-Gen pretrain bundles (TSV) into dataset/pretrain/.
# Run from the repository root.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
source "$here/fetch_common.sh"
echo "=========== Fetch the pretrain bundles ==========="
fetch_files "$RELEASE_URL/datasets/pretrain" "$here/dataset/pretrain_files.txt" "${DATA_DIR:-./dataset}/pretrain"
echo "Done."
