#!/usr/bin/env bash
# Training throughput of the project's trainer against PyTorch on this machine's CPU, in
# one go: for each model (classic 784-400-20-400-784 at batch 128, the default conditional
# model at batch 100), ROUNDS rounds of one PyTorch run and one trainer run, interleaved so
# that both see the same machine noise; prints every run, each side's median and the
# ratio of the medians (trainer / PyTorch; above 1 means the trainer is faster).
#
#   scripts/bench-train.sh                 # 5 rounds of 300 steps per model
#   ROUNDS=9 STEPS=500 scripts/bench-train.sh
#
# Both sides train the same model and loss: `vae config --preset NAME` prints it (the
# presets are defined once, in trainer/src/foundation/config.rs); the trainer's harness
# takes the preset by name and scripts/bench/pytorch_vae.py builds the network from
# that file.
#
# PyTorch is installed from PyPI into a throwaway virtual environment (target/bench-venv,
# git-ignored; about 3 GB with the CUDA libraries PyPI's Linux wheel pulls in, though only
# the CPU is used), pinned to the version below; every figure line names the version
# that ran. It is not a dependency of the project. TORCH_PYTHON=/path/to/python uses an
# existing installation instead.
set -euo pipefail
cd "$(dirname "$0")/.."

rounds="${ROUNDS:-5}"
steps="${STEPS:-300}"
models="${MODELS:-classic default}"

scripts/fetch-mnist.sh data/mnist >/dev/null
torch_pin="torch==2.11.0 numpy==2.4.6"
python="${TORCH_PYTHON:-target/bench-venv/bin/python}"
if [[ -z ${TORCH_PYTHON:-} ]] && ! "$python" -c "import torch; assert torch.__version__.startswith('2.11.0')" 2>/dev/null; then
  echo "installing $torch_pin into target/bench-venv (PyPI, one time)..."
  python3 -m venv target/bench-venv
  target/bench-venv/bin/pip install -q $torch_pin
fi
cargo build --release --locked -q -p trainer --bin vae --example train_bench
bench=target/release/examples/train_bench
configs=target/bench-configs
mkdir -p "$configs"

median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
rate() { sed -n 's/^median \([0-9]*\) images\/s.*/\1/p'; }

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | xargs)"
echo "PyTorch $("$python" -c 'import torch; print(torch.__version__, "with", torch.get_num_threads(), "threads")')"
for model in $models; do
  target/release/vae config --preset "$model" > "$configs/$model.json"
  torch_rates=() ours_rates=()
  for ((r = 1; r <= rounds; r++)); do
    t="$("$python" scripts/bench/pytorch_vae.py --config "$configs/$model.json" --steps "$steps" --repeat 1 | rate)"
    o="$("$bench" --model "$model" --steps "$steps" --repeat 1 | rate)"
    printf '%-8s round %d: PyTorch %6d images/s, trainer %6d images/s\n' "$model" "$r" "$t" "$o"
    torch_rates+=("$t") ours_rates+=("$o")
  done
  t="$(printf '%s\n' "${torch_rates[@]}" | median)"
  o="$(printf '%s\n' "${ours_rates[@]}" | median)"
  printf '%-8s median of %d: PyTorch %d images/s, trainer %d images/s, ratio %.2f\n' \
    "$model" "$rounds" "$t" "$o" "$(awk -v o="$o" -v t="$t" 'BEGIN { print o / t }')"
done
