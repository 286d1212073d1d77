#!/usr/bin/env bash
# The main job on a fresh machine: set up, fetch MNIST, train a conditional model in
# about a minute (`--preset quick`: the default shape with latent 10, class weight 8, 30
# epochs at a constant rate; with a sample grid per epoch and their GIF), export its decoder as f16, f32 and
# i8 model files, evaluate it (eval.json), draw its pictures and digits into PNGs, and run
# the firmware with the new f16 decoder in QEMU's Cortex-M4F.
# EPOCHS=5 scripts/quickstart.sh for a quicker, rougher model. models/default itself is
# `vae train --out models/default` (100 epochs, about 3 minutes on 2 cores).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
cargo build --release --locked -p trainer
vae=target/release/vae
run=runs/quickstart

$vae train --out "$run" --preset quick --epochs "${EPOCHS:-30}" --snapshots
$vae export --run "$run"
$vae eval --run "$run" --iwae-k 0
$vae pictures --run "$run"
$vae inspect "$run/decoder-f16.vae"
$vae sample --model "$run/decoder-f16.vae" --out "$run/samples.png"
$vae sample --model "$run/decoder-f16.vae" --digit 7 --out "$run/sevens.png"
echo "== firmware with $run/decoder-f16.vae under QEMU (Cortex-M4F); hex lines left out here"
log="$run/firmware.log"
(cd firmware && VAE_MODEL="../$run/decoder-f16.vae" cargo run --release --locked) >"$log" \
  || { cat "$log"; exit 1; }
grep -v '^pixels' "$log"
$vae firmware-png "$log" --out "$run/firmware.png"
echo "done: in $run: eval.json, pictures/ (loss curves, reconstructions, morph, digits),"
echo "epochs.gif, samples.png (rows: digits 0-9), sevens.png and firmware.png (what the"
echo "firmware drew; its whole output in $log)"
