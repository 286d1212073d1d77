#!/usr/bin/env bash
# The decoder in a web browser: builds `web/` (vae-core for wasm32-unknown-unknown) and
# the page of `web/page/` with the committed models' decoder files into one folder
# (target/web), then serves it on http://127.0.0.1:8000/ until Ctrl-C.
#
#   scripts/web.sh                     build and serve
#   scripts/web.sh --port 8080         another port (0: any free one, which it prints)
#   scripts/web.sh --build-only        build the folder, do not serve
#   scripts/web.sh --site DIR          build into DIR instead of target/web
#   scripts/web.sh --screenshot FILE   build, then save the page as headless Chromium
#                                      draws it (PNG; README's picture: docs/web.png)
#
# Needs the wasm32-unknown-unknown target (added here with rustup when missing) and
# python3 (its http.server serves the folder); nothing is downloaded but the target.
# --screenshot also needs Chromium (scripts/setup.sh --browser) and Node.js, and installs
# web/browser's pinned playwright-core from the npm registry (web/browser/drive.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

port=8000
site=target/web
serve=1
screenshot=
while (($#)); do
  case "$1" in
    --screenshot) screenshot="$(realpath -m "${2:?--screenshot needs a file}")"; shift 2 ;;
    --port) port="${2:?--port needs a number}"; shift 2 ;;
    --site) site="${2:?--site needs a folder}"; shift 2 ;;
    --build-only) serve=0; shift ;;
    *) echo "error: unknown argument $1 (see the top of $0)" >&2; exit 2 ;;
  esac
done

target=wasm32-unknown-unknown
if command -v rustup >/dev/null && ! rustup target list --installed | grep -qx "$target"; then
  rustup target add "$target"
fi
cargo build --locked -p vae-web --target "$target" --profile web
wasm="target/$target/web/vae_web.wasm"

# The folder is assembled beside its final place and moved in whole.
mkdir -p "$(dirname "$site")"
tmp="$(mktemp -d "$site.XXXX")"
trap 'rm -rf "$tmp"' EXIT
cp web/page/* "$tmp/"
cp "$wasm" "$tmp/"
# Every committed model's decoder files, and their list for the page's menu; but the
# convolutional ones (their config.json has a "convolutional" part), whose transposed
# convolutions the module leaves out (docs/web.md).
models=() left_out=()
for dir in models/*/; do
  name="$(basename "$dir")"
  files=("$dir"decoder-*.vae)
  [[ -e ${files[0]} ]] || continue
  if grep -q '"convolutional"' "${dir}config.json"; then
    left_out+=("$name")
    continue
  fi
  mkdir -p "$tmp/models/$name"
  cp "${files[@]}" "$tmp/models/$name/"
  precisions=()
  for p in f32 f16 i8; do
    [[ -e ${dir}decoder-$p.vae ]] && precisions+=("\"$p\"")
  done
  models+=("{\"name\":\"$name\",\"precisions\":[$(IFS=,; echo "${precisions[*]}")]}")
done
echo "[$(IFS=,; echo "${models[*]}")]" >"$tmp/models.json"
chmod -R a+rX "$tmp"
rm -rf "$site"
mv "$tmp" "$site"
trap - EXIT
echo "built $site: vae_web.wasm $(wc -c <"$wasm") bytes, ${#models[@]} models" \
  "(left out, with transposed convolutions: ${left_out[*]:-none})"

if [[ -n $screenshot ]]; then
  source scripts/web/serve-in-background.sh
  serve_in_background "$site"
  trap 'kill $server_pid 2>/dev/null' EXIT
  web/browser/drive.sh screenshot "$page_url" "$screenshot"
  echo "saved $screenshot"
  exit 0
fi

((serve)) || exit 0
cd "$site"
echo "serving the page (Ctrl-C stops it)"
exec python3 -u -m http.server --bind 127.0.0.1 "$port"
