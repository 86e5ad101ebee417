#!/usr/bin/env bash
# Text -> image retrieval: every text query against 1 matching and 100 other images.
exec "$(dirname "$0")/retrieve_common.sh" txt2img retrieve_t2i_ "$@"
