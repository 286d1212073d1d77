#!/usr/bin/env bash
# The project's whole test suite, as CI runs it: formatting, lints, the no_std build of
# vae-core and both firmware builds for the Cortex-M4F, the firmware under QEMU, and every
# test (unit, doc, workspace-level incl. firmware/host parity, CLI), and a short run of
# each fuzz target.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh

echo "== cargo fmt --check"
cargo fmt --all -- --check
(cd firmware && cargo fmt -- --check)
echo "== cargo clippy (deny warnings)"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== the CUDA training path, type-checked without CUDA (dfdx ci-check)"
cargo clippy -p trainer --all-targets --locked --features cuda-ci-check -- -D warnings
echo "== vae-core for thumbv7em-none-eabihf (no_std, no alloc)"
cargo build -p vae-core --target thumbv7em-none-eabihf --release --locked
echo "== firmware for thumbv7em-none-eabihf: QEMU and NUCLEO-F411RE builds (embed models/default)"
(
  cd firmware
  cargo clippy --release --locked -- -D warnings
  cargo clippy --release --locked --no-default-features --features nucleo-f411re -- -D warnings
  cargo build-nucleo --locked
  cargo build --release --locked
  echo "== firmware under QEMU (cargo run --release)"
  cargo run --release --locked | grep -v -e '^pixels' -e '^  '
)
echo "== fuzz targets, briefly (scripts/fuzz.sh; longer runs: FUZZ_RUNS=10000000 scripts/fuzz.sh)"
(cd fuzz && cargo fmt -- --check && cargo clippy --all-targets -- -D warnings)
FUZZ_SECONDS="${FUZZ_SECONDS:-15}" scripts/fuzz.sh
echo "== cargo test"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
cargo test --workspace --locked 2>&1 | tee "$log"
# One closing line for the whole run, summed over every test binary and doctest.
awk '/^test result:/ { p += $4; f += $6 } END { printf "\ntests: %d passed, %d failed\n", p, f }' "$log"
