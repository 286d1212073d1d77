#!/usr/bin/env bash
# Flash, RAM and instruction counts of the firmware, as measured by the firmware itself
# under QEMU with -icount shift=0: one line per model file.
#   scripts/firmware-report.sh                                  # Cortex-M4F (mps2-an386), default model, f16 and i8
#   scripts/firmware-report.sh --target thumbv6m-none-eabi      # Cortex-M0 (microbit)
#   scripts/firmware-report.sh --target riscv32imac-unknown-none-elf   # RV32IMAC (virt)
#   scripts/firmware-report.sh runs/x/decoder-f16.vae ...
#   scripts/firmware-report.sh models/tutorial/decoder-{f32,f16,i8}.vae   # transposed convolutions
# Flash = code + read-only data (model included) + .data initializers; RAM = statics +
# peak stack (painted). Instructions per digit = the mean over the digits 0-9 of the
# demo, everything included (sampling, both layers, sigmoid, pixel conversion): SysTick
# on Arm, minstret on RISC-V; per free sample for an unconditional model. A file with
# transposed convolutions is run by the build with them (`--features transposed-conv`), and
# the firmware's line on its maps' scratch follows its figures.
set -euo pipefail
cd "$(dirname "$0")/.."

target=thumbv7em-none-eabihf
if [[ ${1:-} == --target ]]; then
  target="${2:?--target needs a target triple}"
  shift 2
fi
models=("$@")
((${#models[@]})) || models=(models/default/decoder-f16.vae models/default/decoder-i8.vae)

cargo build --release --quiet --locked -p trainer --bin vae
echo "target: $target"
printf '%-34s %-4s %9s %7s %9s %13s %9s\n' model prec params flash ram instr/digit instr/MAC
for model in "${models[@]}"; do
  path="$(realpath "$model")"
  features=()
  if [[ $(target/release/vae inspect "$path") == *tconv* ]]; then
    features=(--features transposed-conv)
  fi
  out="$(cd firmware && VAE_MODEL="$path" VAE_FLASH_KIB="${VAE_FLASH_KIB:-256}" \
    cargo run --release --quiet --locked --target "$target" "${features[@]}" 2>&1)" \
    || { echo "$out" >&2; exit 1; }
  printf '%-34s %s\n' "$model" "$(target/release/vae firmware-costs - <<<"$out")"
  if ((${#features[@]})); then
    grep '^maps:' <<<"$out" | sed 's/^/  /'
  fi
done
