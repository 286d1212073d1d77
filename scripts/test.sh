#!/usr/bin/env bash
# The project's whole test suite, as CI runs it: formatting, lints, the no_std build of
# vae-core, the firmware for the Cortex-M4F, Cortex-M0 and RV32IMAC (QEMU) and the
# NUCLEO-F411RE, Raspberry Pi Pico and ESP32-C3 boards, the firmware under QEMU on each of
# the three, the web page's WebAssembly module, and every test (unit, doc,
# workspace-level incl. firmware/host and browser/host parity, CLI), and a short run of
# each fuzz target. Every test: the slow tier too (`--features vae-tests/slow`: the
# firmware in QEMU, the page in Chromium), which a plain `cargo test` leaves out.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh --browser

echo "== cargo fmt --check"
cargo fmt --all -- --check
(cd firmware && cargo fmt -- --check)
echo "== cargo clippy (deny warnings)"
cargo clippy --workspace --all-targets --locked --features vae-tests/slow -- -D warnings
echo "== the CUDA training path, type-checked without CUDA (dfdx ci-check)"
cargo clippy -p trainer --all-targets --locked --features cuda-ci-check -- -D warnings
targets=(thumbv7em-none-eabihf thumbv6m-none-eabi riscv32imac-unknown-none-elf)
for target in "${targets[@]}"; do
  echo "== vae-core for $target (no_std, no alloc; clippy covers its assembly kernels)"
  cargo clippy -p vae-core --target "$target" --release --locked -- -D warnings
  # Without the transposed convolutions, as the firmware's dense builds use it.
  cargo clippy -p vae-core --target "$target" --release --locked --no-default-features -- -D warnings
  cargo build -p vae-core --target "$target" --release --locked
done
echo "== vae-core's and trainer's docs without warnings, and vae-core's crates.io package"
RUSTDOCFLAGS='-D warnings' cargo doc -p vae-core --no-deps --locked
RUSTDOCFLAGS='-D warnings' cargo doc -p trainer --no-deps --locked
# --allow-dirty: the suite also runs on uncommitted changes; the package is built from
# the working tree either way.
cargo publish --dry-run -p vae-core --locked --allow-dirty
echo "== the web page's module (web/) for wasm32-unknown-unknown"
cargo clippy -p vae-web --target wasm32-unknown-unknown --profile web --locked -- -D warnings
echo "== firmware: clippy for each target and board, the NUCLEO-F411RE, Pico and ESP32-C3 builds"
(
  cd firmware
  for target in "${targets[@]}"; do
    cargo clippy --release --locked --target "$target" -- -D warnings
    cargo clippy --release --locked --target "$target" --features transposed-conv -- -D warnings
  done
  cargo clippy --release --locked --no-default-features --features nucleo-f411re -- -D warnings
  cargo clippy --release --locked --target thumbv6m-none-eabi --no-default-features --features rp-pico -- -D warnings
  cargo clippy --release --locked --target riscv32imc-unknown-none-elf --no-default-features --features esp32c3 -- -D warnings
  cargo build-nucleo --locked
  cargo build-pico --locked
  cargo build-esp32c3 --locked
  # The images are compared with the host by tests/tests/firmware.rs; here, the rest.
  for target in "${targets[@]}"; do
    echo "== firmware under QEMU: cargo run --release --target $target"
    cargo run --release --locked --target "$target" | grep -v -e '^pixels' -e '^  ' -e '^image' -e '^cost [0-9]'
  done
)
echo "== fuzz targets, briefly (scripts/fuzz.sh; longer runs: FUZZ_RUNS=10000000 scripts/fuzz.sh)"
(cd fuzz && cargo fmt -- --check && cargo clippy --all-targets -- -D warnings)
FUZZ_SECONDS="${FUZZ_SECONDS:-15}" scripts/fuzz.sh
echo "== cargo test, both tiers"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
cargo test --workspace --locked --features vae-tests/slow 2>&1 | tee "$log"
# The slow tier ran: cargo skips, without a word, a test whose required features are not
# all given.
for slow in firmware browser; do
  grep -q "Running tests/$slow.rs" "$log" || { echo "error: tests/$slow.rs did not run"; exit 1; }
done
# One closing line for the whole run, summed over every test binary and doctest.
awk '/^test result:/ { p += $4; f += $6 } END { printf "\ntests: %d passed, %d failed\n", p, f }' "$log"
