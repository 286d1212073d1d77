#!/usr/bin/env bash
# The project's whole test suite, as CI runs it: formatting, lints, the no_std build of
# vae-core for the Cortex-M4F, and every test (unit, doc, workspace-level, CLI).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh

echo "== cargo fmt --check"
cargo fmt --all -- --check
(cd firmware && cargo fmt -- --check)
echo "== cargo clippy (deny warnings)"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== vae-core for thumbv7em-none-eabihf (no_std, no alloc)"
cargo build -p vae-core --target thumbv7em-none-eabihf --release --locked
echo "== firmware crate for thumbv7em-none-eabihf (embeds models/default)"
(cd firmware && cargo build --release --locked && cargo clippy --release --locked -- -D warnings)
echo "== cargo test"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
cargo test --workspace --locked 2>&1 | tee "$log"
# One closing line for the whole run, summed over every test binary and doctest.
awk '/^test result:/ { p += $4; f += $6 } END { printf "\ntests: %d passed, %d failed\n", p, f }' "$log"
