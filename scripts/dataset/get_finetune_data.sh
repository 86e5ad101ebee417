#!/usr/bin/env bash
# Fetches the released, preprocessed Fashion-Gen finetune bundles (TSV) into dataset/finetune/.
# Run from the repository root.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
source "$here/fetch_common.sh"
echo "=========== Fetch the finetune bundles ==========="
fetch_files "$RELEASE_URL/datasets/finetune" "$here/dataset/finetune_files.txt" "${DATA_DIR:-./dataset}/finetune"
echo "Done."
