#!/usr/bin/env bash
# Time per digit in headless Chromium (the page of scripts/web.sh) against the native
# host decoder, for models/default's f32, f16 and i8 files: the same calls timed the same
# way on both sides (200 digits a round, one round of warm-up, the median of 5 rounds;
# web/page/app.js `timePerDigit`, vae-core/examples/time_digits.rs), in ROUNDS interleaved
# rounds (default 5) of one run; prints the median over the rounds, in microseconds.
#
#   scripts/bench-web.sh
#   ROUNDS=9 scripts/bench-web.sh
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${ROUNDS:-5}"

scripts/web.sh --build-only
cargo build --release --locked -p vae-core --example time_digits
native=target/release/examples/time_digits

source scripts/web/serve-in-background.sh
serve_in_background target/web
results="$(mktemp)"
trap 'kill $server_pid 2>/dev/null; rm -f "$results"' EXIT
for ((r = 1; r <= rounds; r++)); do
  for p in f32 f16 i8; do
    echo "native $p $("$native" "models/default/decoder-$p.vae" 200 5)" >>"$results"
  done
  web/browser/drive.sh timing "$page_url" |
    python3 -c 'import json, sys; t = json.load(sys.stdin)["timings"]; print("\n".join(f"browser {p} {t[p]:.1f}" for p in t))' >>"$results"
  echo "round $r of $rounds done" >&2
done

python3 - "$results" "$rounds" <<'PY'
import statistics, sys
rows = [line.split() for line in open(sys.argv[1])]
median = lambda side, p: statistics.median(float(v) for s, q, v in rows if s == side and q == p)
print(f"\nmodels/default, time per digit (µs), median of {sys.argv[2]} interleaved rounds")
print("| weights | native host | Chromium (wasm32) | Chromium / native |")
print("|---|---:|---:|---:|")
for p in ["f32", "f16", "i8"]:
    n, b = median("native", p), median("browser", p)
    print(f"| {p} | {n:.1f} | {b:.1f} | {b / n:.2f} |")
PY
echo "Chromium: $(chromium --version 2>/dev/null | head -1); rustc: $(rustc --version)"
