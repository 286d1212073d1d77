#!/usr/bin/env bash
# The main job on a fresh machine: set up, fetch MNIST, train the default conditional
# model, export its decoder as f16 and f32 model files, and draw digits into PNGs.
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
echo "done: pictures in $run/samples.png (rows: digits 0-9) and $run/sevens.png"
