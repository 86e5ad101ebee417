#!/usr/bin/env bash
# Fetches the released, preprocessed Fashion-Gen retrieve bundles (TSV) into dataset/retrieve/.
# Run from the repository root.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
source "$here/fetch_common.sh"
echo "=========== Fetch the retrieve bundles ==========="
fetch_files "$RELEASE_URL/datasets/retrieve" "$here/dataset/retrieve_files.txt" "${DATA_DIR:-./dataset}/retrieve"
echo "Done."
