#!/usr/bin/env bash
# The main job on a fresh machine: set up, fetch MNIST, train the default conditional
# model, export its decoder as f16, f32 and i8 model files, draw digits into PNGs, and
# run the firmware with the new f16 decoder in QEMU's Cortex-M4F.
# EPOCHS=5 scripts/quickstart.sh for a quicker, rougher model.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
cargo build --release --locked -p trainer
vae=target/release/vae
run=runs/quickstart

$vae train --out "$run" --epochs "${EPOCHS:-30}"
$vae export --run "$run"
$vae inspect "$run/decoder-f16.vae"
$vae sample --model "$run/decoder-f16.vae" --out "$run/samples.png"
$vae sample --model "$run/decoder-f16.vae" --digit 7 --out "$run/sevens.png"
echo "== firmware with $run/decoder-f16.vae under QEMU (Cortex-M4F); hex lines left out here"
log="$run/firmware.log"
(cd firmware && VAE_MODEL="../$run/decoder-f16.vae" cargo run --release --locked) >"$log" \
  || { cat "$log"; exit 1; }
grep -v '^pixels' "$log"
$vae firmware-png "$log" --out "$run/firmware.png"
echo "done: pictures in $run/samples.png (rows: digits 0-9), $run/sevens.png and"
echo "$run/firmware.png (what the firmware drew); the firmware's whole output in $log"
