#!/usr/bin/env bash
# The importance-weighted estimate of -log p(x) (`vae eval --iwae-k`) against PyTorch's
# computation of the same bound, on the same weights, the same K and the same test
# images, on this machine's CPU: ROUNDS rounds, each one PyTorch run per mode of
# TORCH_MODES and then one trainer run, interleaved so that every side sees the same
# machine noise. Prints every run, then each side's median and the ratio of the trainer's
# median to the fastest PyTorch mode's (above 1: the trainer is faster).
#
#   scripts/bench-iwae.sh                              # models/iwae-k5, k 5000, 20 images, 3 rounds
#   RUN=models/iwae K=5000 IMAGES=50 ROUNDS=5 scripts/bench-iwae.sh
#
# PyTorch comes from scripts/bench/torch-env.sh (a pinned version in a throwaway virtual
# environment, target/bench-venv; TORCH_PYTHON=/path/to/python uses another).
set -euo pipefail
cd "$(dirname "$0")/.."

run="${RUN:-models/iwae-k5}"
k="${K:-5000}"
images="${IMAGES:-20}"
rounds="${ROUNDS:-3}"
read -r -a modes <<< "${TORCH_MODES:-eager compile}"

source scripts/bench/torch-env.sh
cargo build --release --locked -q -p trainer --example iwae_bench
bench=target/release/examples/iwae_bench

median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
rate() { sed -n 's/^median \([0-9.]*\) images\/s.*/\1/p'; }

echo "== $run, k $k, first $images test images, $rounds rounds; processor: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(nproc) cores"
declare -A rates
for round in $(seq "$rounds"); do
  for mode in "${modes[@]}"; do
    line="$("$python" scripts/bench/pytorch_iwae.py --run "$run" --k "$k" --images "$images" --repeat 1 --mode "$mode" | tail -1)"
    echo "round $round  pytorch $mode: $line"
    rates[$mode]+="$(rate <<< "$line") "
  done
  line="$("$bench" --run "$run" --k "$k" --images "$images" --repeat 1 | tail -1)"
  echo "round $round  trainer: $line"
  rates[trainer]+="$(rate <<< "$line") "
done
fastest=0
for mode in "${modes[@]}"; do
  m="$(tr ' ' '\n' <<< "${rates[$mode]}" | grep . | median)"
  echo "median pytorch $mode: $m images/s"
  fastest="$(awk -v a="$fastest" -v b="$m" 'BEGIN { print (b > a) ? b : a }')"
done
ours="$(tr ' ' '\n' <<< "${rates[trainer]}" | grep . | median)"
echo "median trainer: $ours images/s"
echo "trainer / fastest PyTorch: $(awk -v o="$ours" -v t="$fastest" 'BEGIN { printf "%.2f", o / t }')x"
