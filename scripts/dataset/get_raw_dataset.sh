#!/usr/bin/env bash
# Fetches the raw Fashion-Gen images and product lists into dataset/raw/ (for kaleido-preprocess).
# Run from the repository root.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
source "$here/fetch_common.sh"
echo "=========== Fetch the raw Fashion-Gen data ==========="
fetch_files "$RELEASE_URL/datasets/raw_data" "$here/dataset/raw_files.txt" "${DATA_DIR:-./dataset}/raw"
echo "Done."
