#!/usr/bin/env bash
# Training throughput of the project's trainer against PyTorch on this machine's CPU, in
# one go: for each model (classic 784-400-20-400-784 at batch 128, the default conditional
# model at batch 100; MODELS names other presets, e.g. the convolutional ones), ROUNDS rounds, each one PyTorch run per configuration of
# TORCH_CONFIGS and then one trainer run, interleaved so that every side sees the same
# machine noise. Prints every run; then per model each side's median, the fastest PyTorch
# configuration's median and the ratios of the medians (trainer / PyTorch; above 1 means
# the trainer is faster), against every configuration and against the fastest.
#
#   scripts/bench-train.sh                          # 5 rounds of 300 steps per model
#   ROUNDS=9 STEPS=500 scripts/bench-train.sh
#   MODELS="tutorial conv" ROUNDS=3 STEPS=60 scripts/bench-train.sh   # the convolutional presets
#   TORCH_CONFIGS="eager/default max-autotune/fused" scripts/bench-train.sh
#
# TORCH_CONFIGS: the PyTorch configurations to run, in order, each MODE/ADAM:
# `pytorch_vae.py --mode MODE --adam ADAM` (modes eager, compile, max-autotune,
# reduce-overhead; graph is CUDA only; Adam default, foreach, fused). The default is
# eager and torch.compile, each with PyTorch's default Adam and with its fused one, the
# fastest on this machine's CPU (BENCHMARKS.md). The compiled modes compile in
# untimed warm-up steps, in every run: Inductor generates C++ for the CPU and builds it
# with the system's C++ compiler, so they need one (g++), and a run of theirs takes longer
# than its figure suggests. A mode that fails prints its error line in its round and
# is left out of the medians and of "fastest"; the last PyTorch run's stderr is kept in
# target/bench-configs/pytorch.stderr.
#
# Both sides train the same model and loss: `vae config --preset NAME` prints it (the
# presets are defined once, in trainer/src/foundation/config.rs); the trainer's harness
# takes the preset by name and scripts/bench/pytorch_vae.py builds the network from
# that file.
#
# PyTorch comes from scripts/bench/torch-env.sh (a pinned version in a throwaway virtual
# environment, target/bench-venv; TORCH_PYTHON=/path/to/python uses another); every
# figure line names the version that ran.
set -euo pipefail
cd "$(dirname "$0")/.."

rounds="${ROUNDS:-5}"
steps="${STEPS:-300}"
models="${MODELS:-classic default}"
read -r -a modes <<< "${TORCH_CONFIGS:-eager/default eager/fused compile/default compile/fused}"

source scripts/bench/torch-env.sh
cargo build --release --locked -q -p trainer --bin vae --example train_bench
bench=target/release/examples/train_bench
configs=target/bench-configs
mkdir -p "$configs"

median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
rate() { sed -n 's/^median \([0-9]*\) images\/s.*/\1/p'; }
ratio() { awk -v o="$1" -v t="$2" 'BEGIN { printf "%.2f", o / t }'; }

# torch_run MODE/ADAM MODEL: one PyTorch run; prints its images/s, or its error line (the
# script's own, or the exit status and the last line it wrote on stderr).
torch_run() {
  local out status=0 errors="$configs/pytorch.stderr"
  out="$("$python" scripts/bench/pytorch_vae.py --config "$configs/$2.json" --mode "${1%/*}" --adam "${1#*/}" \
    --steps "$steps" --repeat 1 2>"$errors")" || status=$?
  if [[ -n $(rate <<< "$out") ]]; then
    rate <<< "$out"
  elif grep -q '^error: ' <<< "$out"; then
    grep -m1 '^error: ' <<< "$out"
  else
    echo "error: $1: exit status $status: $(grep -v '^[[:space:]]*$' "$errors" | tail -1)"
  fi
}

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | xargs)"
echo "PyTorch $("$python" -c 'import torch; print(torch.__version__, "with", torch.get_num_threads(), "threads")'), configurations: ${modes[*]}"
for model in $models; do
  target/release/vae config --preset "$model" > "$configs/$model.json"
  declare -A torch_rates=()
  ours_rates=()
  for ((r = 1; r <= rounds; r++)); do
    line="$(printf '%-8s round %d: PyTorch' "$model" "$r")" errors=()
    for mode in "${modes[@]}"; do
      t="$(torch_run "$mode" "$model")"
      if [[ $t == error:* ]]; then
        line+="$(printf ' %s  failed,' "$mode")" errors+=("$t")
      else
        line+="$(printf ' %s %6d,' "$mode" "$t")" torch_rates[$mode]+="$t "
      fi
    done
    o="$("$bench" --model "$model" --steps "$steps" --repeat 1 | rate)"
    printf '%s trainer %6d images/s\n' "$line" "$o"
    ((${#errors[@]} == 0)) || printf '           %s\n' "${errors[@]}"
    ours_rates+=("$o")
  done
  o="$(printf '%s\n' "${ours_rates[@]}" | median)"
  printf '%-8s median of %d: trainer %.0f images/s\n' "$model" "$rounds" "$o"
  best="" best_rate=0
  for mode in "${modes[@]}"; do
    if [[ -z ${torch_rates[$mode]:-} ]]; then
      printf '%-8s   PyTorch %-16s failed in every round\n' "$model" "$mode"
      continue
    fi
    read -r -a these <<< "${torch_rates[$mode]}"
    t="$(printf '%s\n' "${these[@]}" | median)"
    printf '%-8s   PyTorch %-16s %6.0f images/s, trainer / it %s%s\n' "$model" "$mode" "$t" "$(ratio "$o" "$t")" \
      "$( ((${#these[@]} == rounds)) || echo " (${#these[@]} of $rounds rounds)")"
    if awk -v t="$t" -v b="$best_rate" 'BEGIN { exit !(t > b) }'; then
      best="$mode" best_rate="$t"
    fi
  done
  if [[ -n $best ]]; then
    printf '%-8s fastest PyTorch: %s, %.0f images/s; trainer / fastest %s\n' "$model" "$best" "$best_rate" "$(ratio "$o" "$best_rate")"
  fi
  unset torch_rates
done
