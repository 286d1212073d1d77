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
cargo test --workspace --locked
