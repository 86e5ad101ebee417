#!/usr/bin/env bash
# fetch_files BASE_URL MANIFEST DEST: downloads every file named in MANIFEST from BASE_URL into DEST.
# A file already there is kept; each download goes to NAME.part and is renamed when complete. When the
# host cannot be reached, says so and exits 3 (the released files live outside this machine's network).
RELEASE_URL=${KALEIDO_RELEASE_URL:-http://icbu-ensa-sc.oss-cn-zhangjiakou.aliyuncs.com/mingchen.zgmc/KaleidoBERT_TF_CODE}

fetch_files() {
  local base=$1 manifest=$2 dest=$3 name n=0 total
  total=$(grep -c . "$manifest")
  mkdir -p "$dest"
  while read -r name; do
    [ -n "$name" ] || continue
    n=$((n + 1))
    if [ -s "$dest/$name" ]; then echo "[$n/$total] $name: already there"; continue; fi
    echo "[$n/$total] $name"
    if command -v curl >/dev/null 2>&1; then
      curl -fL --connect-timeout 15 --retry 2 --progress-bar -o "$dest/$name.part" "$base/$name"
    else
      wget -q --show-progress --timeout=15 --tries=2 -O "$dest/$name.part" "$base/$name"
    fi || {
      rm -f "$dest/$name.part"
      echo "error: cannot download $base/$name" >&2
      echo "       the release host is not reachable from this machine (or the file moved)." >&2
      echo "       Download the files listed in $manifest elsewhere and put them into $dest," >&2
      echo "       or set KALEIDO_RELEASE_URL to a mirror; then run this script again." >&2
      exit 3
    }
    mv "$dest/$name.part" "$dest/$name"
  done < "$manifest"
}
