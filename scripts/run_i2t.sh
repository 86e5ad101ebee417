#!/usr/bin/env bash
# Image -> text retrieval: every image query against 1 matching and 100 other texts.
exec "$(dirname "$0")/retrieve_common.sh" img2txt retrieve_i2t_ "$@"
