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
#          model (10 epochs, batch 128), seeds 0 and 1 of each, then the conditional
#          convolutional model (--preset conv, CONV_EPOCHS) seed 0, on real MNIST, exported
#   bench  images/s of the trainer and of PyTorch on this GPU, the same model and loss,
#          at batch 128 and 1024, ROUNDS interleaved rounds of STEPS steps; each round
#          runs every PyTorch configuration of TORCH_CONFIGS (MODE/ADAM of
#          pytorch_vae.py's --mode and --adam), then the trainer. By default: eager with
#          PyTorch's default Adam and with fused Adam; torch.compile (default,
#          max-autotune and reduce-overhead modes) with fused Adam; the whole step in
#          one hand-captured CUDA graph. bench.tsv has every run's figure, or the error
#          of a configuration that failed (recorded, not a failure of the check);
#          summary.md a table per model and batch (each configuration's median, the
#          trainer / it) and the trainer against the fastest PyTorch configuration.
# Knobs: ROUNDS (5), STEPS (300), EPOCHS (30 for the default model), CLASSIC_EPOCHS (10),
# CONV_EPOCHS (10);
# for bench: TORCH_CONFIGS (the configurations, in order; a compiled one compiles again
# in every run, which PyTorch's on-disk caches shorten, and max-autotune's compilation
# can take minutes),
# TORCH_TIMEOUT (300, seconds for one PyTorch run, a run cut short being recorded as
# such), BENCH_MODELS ("classic default conv"), BENCH_BATCHES ("128 1024").
# DEVICE=cpu rehearses the script on a CPU machine, with CPU builds in the bundle's place
# (the graph configuration then fails with its error, which is recorded).
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
  # Every model trains through dfdx's tape on the GPU (the CPU has the closed form).
  train conv-s0 --preset conv --seed 0 --epochs "${CONV_EPOCHS:-10}"
fi

if [[ $stages == *bench* ]]; then
  section bench
  # The PyTorch configurations each round runs, in this order, before the trainer: MODE/ADAM
  # as pytorch_vae.py's --mode and --adam (its header describes them); what a user after
  # speed would try: eager (PyTorch's default Adam, then fused Adam), torch.compile in its
  # three modes, and the whole step captured by hand in one CUDA graph.
  torch_configs="${TORCH_CONFIGS:-eager/default eager/fused compile/fused max-autotune/fused reduce-overhead/fused graph/default}"
  read -r -a configs <<< "$torch_configs"
  rounds="${ROUNDS:-5}" steps="${STEPS:-300}" torch_timeout="${TORCH_TIMEOUT:-300}"
  rate() { sed -n 's/^median \([0-9]*\) images\/s.*/\1/p'; }
  median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
  ratio() { awk -v o="$1" -v t="$2" 'BEGIN { printf "%.2f", o / t }'; }
  # torch_run CONFIG MODEL BATCH: one PyTorch run; prints its images/s, or one line of
  # error (pytorch_vae.py's own, or the exit status and the last line it wrote on stderr).
  # Its stderr goes to the log.
  torch_run() {
    local mode="${1%%/*}" adam=default result status=0 errors="$out/pytorch.stderr"
    [[ $1 == */* ]] && adam="${1#*/}"
    result="$(timeout "$torch_timeout" python3 "$bundle/pytorch_vae.py" --device "$device" --data-dir "$bundle/mnist" \
      --config "$out/$2.json" --batch-size "$3" --steps "$steps" --repeat 1 --mode "$mode" --adam "$adam" 2>"$errors")" \
      || status=$?
    cat "$errors" >&2
    if [[ -n $(rate <<< "$result") ]]; then
      rate <<< "$result"
    elif grep -q '^error: ' <<< "$result"; then
      grep -m1 '^error: ' <<< "$result" | tr '\t' ' '
    elif ((status == 124)); then
      echo "error: $1: no result within TORCH_TIMEOUT=$torch_timeout s"
    else
      echo "error: $1: exit status $status: $(grep -v '^[[:space:]]*$' "$errors" | tail -1 | tr '\t' ' ')"
    fi
  }
  cell() { sed 's/|/\\|/g' <<< "$1"; } # text in a Markdown table cell
  report() { printf '%s\n' "$@" | tee -a "$summary"; } # lines for the log and the summary
  declare -A torch_rates torch_errors
  overview=()
  { printf 'model\tbatch\tround'; printf '\t%s' "${configs[@]}"; printf '\ttrainer\n'; } > "$out/bench.tsv"
  echo "PyTorch $(python3 -c 'import torch; print(torch.__version__)') (the version each figure below ran with); PyTorch configurations (MODE/ADAM of pytorch_vae.py): ${configs[*]}" >> "$summary"
  for model in ${BENCH_MODELS:-classic default conv}; do
    # The model both sides train, defined once (trainer/src/foundation/config.rs).
    "$bundle/vae" config --preset "$model" > "$out/$model.json"
    for batch in ${BENCH_BATCHES:-128 1024}; do
      torch_rates=() torch_errors=() ours_rates=()
      for ((r = 1; r <= rounds; r++)); do
        row="$(printf '%s\t%s\t%s' "$model" "$batch" "$r")"
        for config in "${configs[@]}"; do
          t="$(torch_run "$config" "$model" "$batch")"
          row+="$(printf '\t%s' "$t")"
          echo "$model batch $batch round $r: PyTorch $config: $t"
          if [[ $t == error:* ]]; then
            # A failing configuration is a result, recorded with its error, not a failure of the check.
            torch_errors[$config]="${torch_errors[$config]:-$t}"
          else
            torch_rates[$config]+="$t "
          fi
        done
        o="$("$bundle/train_bench" --device "$device" --data-dir "$bundle/mnist" --model "$model" \
          --batch-size "$batch" --steps "$steps" --repeat 1 | rate)"
        echo "$model batch $batch round $r: trainer: ${o:-no figure}"
        printf '%s\t%s\n' "$row" "${o:-NA}" >> "$out/bench.tsv"
        if [[ -n $o ]]; then ours_rates+=("$o"); else fail "bench: the trainer, $model batch $batch round $r, did not report"; fi
      done
      o=""
      ((${#ours_rates[@]} == 0)) || o="$(printf '%s\n' "${ours_rates[@]}" | median)"
      report "" "### $model, batch $batch" "" \
        "| run | median images/s | rounds with a figure | trainer / it |" "|---|---:|---:|---:|"
      best="" best_rate=0
      for config in "${configs[@]}"; do
        if [[ -z ${torch_rates[$config]:-} ]]; then
          report "| PyTorch $config | $(cell "${torch_errors[$config]:-}") | 0 of $rounds | |"
          continue
        fi
        read -r -a these <<< "${torch_rates[$config]}"
        t="$(printf '%s\n' "${these[@]}" | median)"
        report "$(printf '| PyTorch %s | %.0f | %d of %d | %s |' "$config" "$t" "${#these[@]}" "$rounds" \
          "$([[ -z $o ]] || ratio "$o" "$t")")"
        if awk -v t="$t" -v b="$best_rate" 'BEGIN { exit !(t > b) }'; then
          best="$config" best_rate="$t"
        fi
      done
      [[ -z $o ]] || report "$(printf '| trainer | %.0f | %d of %d | |' "$o" "${#ours_rates[@]}" "$rounds")"
      for config in "${configs[@]}"; do
        if [[ -n ${torch_errors[$config]:-} && -n ${torch_rates[$config]:-} ]]; then
          report "" "PyTorch $config failed in some rounds: $(cell "${torch_errors[$config]}")"
        fi
      done
      if [[ -n $best && -n $o ]]; then
        overview+=("$(printf '| %s | %s | %s | %.0f | %.0f | **%s** |' "$model" "$batch" "$best" "$best_rate" "$o" "$(ratio "$o" "$best_rate")")")
      else
        overview+=("| $model | $batch | ${best:-none reported} | | ${o:-none reported} | |")
      fi
    done
  done
  report "" "### The trainer against the fastest PyTorch configuration" "" \
    "| model | batch | fastest PyTorch | its images/s | trainer, images/s | trainer / fastest |" \
    "|---|---|---|---:|---:|---:|" "${overview[@]}" "" \
    "Medians of $rounds interleaved rounds of $steps steps each, after untimed warm-up steps (one in eager mode; in the others, those of pytorch_vae.py, in which the compilation or the graph capture happens); every run in bench.tsv, a failed one with its error."
fi

echo
echo "results in $out (summary.md)"
exit "$failed"
