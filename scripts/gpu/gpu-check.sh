#!/usr/bin/env bash
# The GPU check: run on the GPU machine from the CUDA bundle (scripts/build-cuda.sh).
# Writes everything into OUT_DIR: gpu-check.log (all output), summary.md (the figures),
# runs/ (the CUDA-trained models, to check back on the build machine with
# scripts/gpu/compare.sh) and bench.tsv (every throughput run).
#
#   ./gpu-check.sh OUT_DIR                 # every stage, in order
#   ./gpu-check.sh OUT_DIR smoke bench     # some stages: info smoke train bench
#
# Stages:
#   info   the GPU, driver, CUDA and PyTorch versions, the bundle's BUILD
#   smoke  `vae device-check --device cuda`: device, cuBLAS matmul, every precompiled
#          kernel of a training step and of Adam, each against the CPU; and that the
#          binaries do not need the build machine's folders (none exist here)
#   train  the default conditional model (30 epochs) and the classic 784-400-20-400-784
#          model (10 epochs, batch 128), seeds 0 and 1 of each, on real MNIST, exported
#   bench  images/s of the trainer and of PyTorch eager on this GPU, the same model and
#          loss, at batch 128 and 1024, ROUNDS interleaved rounds of STEPS steps, medians
# Knobs: ROUNDS (5), STEPS (300), EPOCHS (30 for the default model), CLASSIC_EPOCHS (10);
# DEVICE=cpu rehearses the script on a CPU machine, with CPU builds in the bundle's place.
set -uo pipefail

out="${1:?usage: gpu-check.sh OUT_DIR [info smoke train bench]}"
shift
stages="${*:-info smoke train bench}"
device="${DEVICE:-cuda}"
source "$(dirname "$0")/env.sh"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
exec > >(tee -a "$out/gpu-check.log") 2>&1
summary="$out/summary.md"
failed=0
fail() { echo "FAIL: $*"; echo "- **FAIL**: $*" >> "$summary"; failed=1; }
section() { echo; echo "== $1"; printf '\n## %s\n\n' "$1" >> "$summary"; }

check_libraries || exit 1
[[ -f $summary ]] || echo "# GPU check, $(date -u +%Y-%m-%d)" > "$summary"

if [[ $stages == *info* ]]; then
  section info
  {
    echo "- date: $(date -u +%Y-%m-%dT%H:%MZ)"
    echo "- GPU: $(nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>&1 | head -1)"
    echo "- driver: $(nvidia-smi --query-gpu=driver_version --format=csv,noheader 2>&1 | head -1), $(nvidia-smi 2>/dev/null | grep -o 'CUDA Version: [0-9.]*')"
    echo "- PyTorch: $(python3 -c 'import torch; print(torch.__version__, "CUDA", torch.version.cuda)' 2>&1 | tail -1)"
    echo "- CPU: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | xargs)"
    sed 's/^/- bundle /' "$bundle/BUILD"
  } | tee -a "$summary"
fi

if [[ $stages == *smoke* ]]; then
  section smoke
  # Folders of the build machine that dfdx's run-time-compiled kernels would read.
  built_in="$(strings -n 8 "$bundle/vae" | grep -oE '/[^ "]*/(cuda-venv|target/cuda)[^ "]*' | sort -u | head -3)"
  if [[ -n $built_in ]]; then
    fail "the binary refers to build-machine folders: $built_in"
  else
    echo "- the binary refers to no build-machine folder" | tee -a "$summary"
  fi
  if "$bundle/vae" device-check --device "$device" | tee "$out/device-check.txt"; then
    sed 's/^/    /' "$out/device-check.txt" >> "$summary"
  else
    sed 's/^/    /' "$out/device-check.txt" >> "$summary"
    fail "vae device-check --device $device (above)"
  fi
fi

# train NAME ARGS...: one CUDA training run into runs/NAME, exported; its time and last
# epoch in the summary.
train() {
  local name="$1" dir="$out/runs/$1" start
  shift
  rm -rf "$dir"
  start=$SECONDS
  if "$bundle/vae" train --device "$device" --data-dir "$bundle/mnist" --out "$dir" "$@" \
    && "$bundle/vae" export --run "$dir"; then
    rm -f "$dir/resume.safetensors" # Adam's state: three times the weights, not needed
    echo "- $name (\`vae train --device $device $*\`): $((SECONDS - start)) s; last epoch:" \
      "$(python3 -c 'import json, sys
h = json.load(open(sys.argv[1]))[-1]
t = h["test"]["reconstruction"] + h["test"]["kl"]
print("test loss %.2f, %.0f images/s, label fidelity %s" % (t, h["images_per_second"], h.get("label_fidelity")))' "$dir/history.json")" \
      | tee -a "$summary"
  else
    fail "training $name"
  fi
}

if [[ $stages == *train* ]]; then
  section train
  epochs="${EPOCHS:-30}"
  # Seed 0 of each model first: a run cut short by the call's time limit still has one.
  train default-s0 --seed 0 --epochs "$epochs"
  train classic-s0 --preset classic --seed 0 --epochs "${CLASSIC_EPOCHS:-10}"
  train default-s1 --seed 1 --epochs "$epochs"
  train classic-s1 --preset classic --seed 1 --epochs "${CLASSIC_EPOCHS:-10}"
fi

if [[ $stages == *bench* ]]; then
  section bench
  rounds="${ROUNDS:-5}" steps="${STEPS:-300}"
  rate() { sed -n 's/^median \([0-9]*\) images\/s.*/\1/p'; }
  median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
  printf 'model\tbatch\tround\tpytorch\ttrainer\n' > "$out/bench.tsv"
  echo "PyTorch $(python3 -c 'import torch; print(torch.__version__)') (the version each figure below ran with)" >> "$summary"
  echo "| model | batch | PyTorch eager, images/s | trainer, images/s | trainer / PyTorch |" >> "$summary"
  echo "|---|---|---|---|---|" >> "$summary"
  for model in classic default; do
    # The model both sides train, defined once (trainer/src/foundation/config.rs).
    "$bundle/vae" config --preset "$model" > "$out/$model.json"
    for batch in 128 1024; do
      torch_rates=() ours_rates=()
      for ((r = 1; r <= rounds; r++)); do
        t="$(python3 "$bundle/pytorch_vae.py" --device "$device" --data-dir "$bundle/mnist" --config "$out/$model.json" \
          --batch-size "$batch" --steps "$steps" --repeat 1 | rate)"
        o="$("$bundle/train_bench" --device "$device" --data-dir "$bundle/mnist" --model "$model" \
          --batch-size "$batch" --steps "$steps" --repeat 1 | rate)"
        printf '%s\t%s\t%s\t%s\t%s\n' "$model" "$batch" "$r" "${t:-NA}" "${o:-NA}" | tee -a "$out/bench.tsv"
        [[ -n $t && -n $o ]] || { fail "bench $model batch $batch round $r did not report"; continue; }
        torch_rates+=("$t") ours_rates+=("$o")
      done
      if ((${#ours_rates[@]} > 0)); then
        t="$(printf '%s\n' "${torch_rates[@]}" | median)"
        o="$(printf '%s\n' "${ours_rates[@]}" | median)"
        printf '| %s | %s | %.0f | %.0f | %.2f |\n' "$model" "$batch" "$t" "$o" \
          "$(awk -v o="$o" -v t="$t" 'BEGIN { print o / t }')" | tee -a "$summary"
      fi
    done
  done
  echo >> "$summary"
  echo "Medians of $rounds interleaved rounds of $steps steps each (one warm-up step not timed); every run in bench.tsv." >> "$summary"
fi

echo
echo "results in $out (summary.md)"
exit "$failed"
