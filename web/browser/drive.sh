#!/usr/bin/env bash
# Runs drive.mjs (see there) with its pinned playwright-core, installed from the npm
# registry by `npm ci` on first use (package-lock.json; no browser is downloaded).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
if [[ ! -d $here/node_modules/playwright-core ]]; then
  (cd "$here" && npm ci --no-audit --no-fund --loglevel=error)
fi
exec node "$here/drive.mjs" "$@"
