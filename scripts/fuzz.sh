#!/usr/bin/env bash
# Runs the cargo-fuzz (libFuzzer) targets in fuzz/: the model file parser (`model_parse`),
# the decoder on checksummed hostile files (`model_decode`) and the trainer's IDX reader
# (`idx_reader`). Installs cargo-fuzz from crates.io when missing.
#
#   scripts/fuzz.sh                     each target for FUZZ_SECONDS (default 20), as CI does
#   FUZZ_RUNS=10000000 scripts/fuzz.sh  each target for that many executions
#   scripts/fuzz.sh model_decode        one target
#
# Builds with debug assertions (overflow checks) and without a sanitizer: the code under
# test has no `unsafe` on the host, so an out-of-bounds access is a bounds-check panic,
# which libFuzzer reports as a crash like any other. The stable toolchain suffices.
# New inputs go to fuzz/corpus/TARGET (not in git); fuzz/seeds/TARGET is the seed
# corpus kept in the repository. A crash leaves its input in fuzz/artifacts/TARGET and
# makes this script fail.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "installing cargo-fuzz (crates.io)"
  cargo install cargo-fuzz --locked --version 0.13.2
fi

targets=("$@")
((${#targets[@]})) || targets=(model_parse model_decode idx_reader)
if [[ -n ${FUZZ_RUNS:-} ]]; then
  limit=(-runs="$FUZZ_RUNS")
else
  limit=(-max_total_time="${FUZZ_SECONDS:-20}")
fi

flags=(--sanitizer none --debug-assertions)
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
cargo fuzz build "${flags[@]}"
for target in "${targets[@]}"; do
  echo "== fuzz $target (${limit[*]})"
  mkdir -p "corpus/$target"
  seeds=()
  [[ -d seeds/$target ]] && seeds=("seeds/$target")
  # Only libFuzzer's summary is shown, or its last lines if the target failed.
  status=0
  cargo fuzz run "${flags[@]}" "$target" "corpus/$target" "${seeds[@]}" -- \
    "${limit[@]}" -print_final_stats=1 >"$log" 2>&1 || status=$?
  if ((status != 0)); then
    tail -n 40 "$log"
    echo "error: fuzz target $target failed (exit $status); the input is in fuzz/artifacts/$target" >&2
    exit "$status"
  fi
  grep -E '^(Done|stat::number_of_executed_units|stat::new_units_added)' "$log"
done
