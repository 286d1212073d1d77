#!/usr/bin/env bash
# Mutation testing with cargo-mutants (https://mutants.rs): changes the code of `mnist`
# and `vae-core` one small edit at a time (a `<` for a `<=`, a deleted match arm, a
# function that returns a default) and checks that some test fails for each. Results
# and the command are recorded in docs/contributing.md, "Mutation testing".
#
#   scripts/mutants.sh                          both crates, each against its own tests
#   CRATES=mnist scripts/mutants.sh             one crate
#   scripts/mutants.sh --shard 0/4              extra arguments go to cargo-mutants
#   scripts/mutants.sh --file vae-core/src/demo.rs
#   TESTS=workspace CRATES=vae-core scripts/mutants.sh --re 'round_shift_wide'
#                                               vae-core also against the fast workspace
#                                               tests (see below); slow per mutant
#   JOBS=2 scripts/mutants.sh                   parallel builds (default 1)
#
# Too slow for CI (not in .ci/run). On 2 x86-64 cores with one job: mnist (67 mutants)
# takes about MNIST_TIME; vae-core (739 mutants) about VAECORE_TIME per mutant, so
# VAECORE_TOTAL for all of them; a shard (`--shard K/N`) runs an Nth.
#
# Which tests run for each mutant: the mutated crate's own (`cargo test -p CRATE`: unit
# tests, integration tests and doctests). With TESTS=workspace, vae-core's mutants also
# run the workspace crate vae-tests' files that need neither a trained model run nor
# QEMU (format, format_properties, quantization); that rebuilds the trainer, a
# dev-dependency of vae-tests, for every mutant, so it is meant for a few mutants
# (`--re`, `--file`), e.g. to see whether the workspace tests catch what the crate's own
# miss. firmware.rs (QEMU) and the files that train or load the trainer are left out.
#
# Exclusions and their reasons are in .cargo/mutants.toml. Output: target/mutants/CRATE/
# mutants.out (caught.txt, missed.txt, unviable.txt, timeout.txt, outcomes.json).
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO_MUTANTS_VERSION=27.1.0
if ! cargo mutants --version 2>/dev/null | grep -qF "$CARGO_MUTANTS_VERSION"; then
  echo "installing cargo-mutants $CARGO_MUTANTS_VERSION (crates.io)"
  cargo install --locked "cargo-mutants@$CARGO_MUTANTS_VERSION"
fi

CRATES="${CRATES:-mnist vae-core}"
JOBS="${JOBS:-1}"
TESTS="${TESTS:-own}"

# Lines in a mutants.out list (0 when the file is missing or empty).
count() {
  if [[ -s "$1" ]]; then
    wc -l <"$1" | tr -d ' '
  else
    echo 0
  fi
}

summary=()
status=0
for crate in $CRATES; do
  out="target/mutants/$crate"
  tests=(--test-package "$crate")
  test_args=()
  if [[ "$TESTS" == workspace && "$crate" == vae-core ]]; then
    tests+=(--test-package vae-tests)
    # `--test` picks the workspace files; `--lib`, `--tests` and `--doc` cannot be
    # mixed with it, so vae-core's own tests run through its targets by name.
    test_args=(-- --lib --test format --test format_properties --test quantization)
  fi
  echo "== cargo mutants: $crate (tests: $TESTS, jobs: $JOBS)"
  rc=0
  cargo mutants --package "$crate" "${tests[@]}" --jobs "$JOBS" --output "$out" \
    "$@" "${test_args[@]}" || rc=$?
  # 0: every mutant caught; 2: some missed; 3: some timed out. Anything else is a
  # failure of the run itself (the unmutated tree failing its tests, a bad argument).
  case "$rc" in
    0 | 2 | 3) ;;
    *)
      echo "cargo mutants failed for $crate (exit $rc)" >&2
      exit "$rc"
      ;;
  esac
  [[ "$rc" == 0 ]] || status="$rc"
  dir="$out/mutants.out"
  caught="$(count "$dir/caught.txt")"
  missed="$(count "$dir/missed.txt")"
  unviable="$(count "$dir/unviable.txt")"
  timeout="$(count "$dir/timeout.txt")"
  viable=$((caught + missed + timeout))
  if ((viable > 0)); then
    score="$(awk -v c="$caught" -v v="$viable" 'BEGIN { printf "%.1f %%", 100 * c / v }')"
  else
    score="n/a"
  fi
  summary+=("$(printf '%-9s caught %4d  missed %4d  unviable %4d  timeout %4d  score %s' \
    "$crate" "$caught" "$missed" "$unviable" "$timeout" "$score")")
  if ((missed > 0)); then
    echo "missed in $crate:"
    sed 's/^/  /' "$dir/missed.txt"
  fi
done

echo
echo "== mutation score = caught / (caught + missed + timeout)"
printf '%s\n' "${summary[@]}"
exit "$status"
