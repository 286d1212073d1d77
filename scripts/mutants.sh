#!/usr/bin/env bash
# Mutation testing with cargo-mutants (https://mutants.rs): changes the code of `mnist`
# and `vae-core` one small edit at a time (a `<` for a `<=`, a deleted match arm, a
# function that returns a default) and checks that some test fails for each. Prints,
# per crate, the mutants caught, missed, unviable (did not build) and timed out, and
# the score caught / (caught + missed + timeout). Results and the command are recorded
# in docs/contributing.md, "Mutation testing".
#
#   scripts/mutants.sh                          both crates, each against its own tests
#   CRATES=mnist scripts/mutants.sh             one crate
#   CRATES=vae-core scripts/mutants.sh --shard 0/4 --sharding round-robin
#                                               extra arguments go to cargo-mutants
#   CRATES=vae-core scripts/mutants.sh --file vae-core/src/demo.rs
#   CRATES=vae-core scripts/mutants.sh --re round_shift_wide
#   TESTS=workspace CRATES=vae-core scripts/mutants.sh --re round_shift_wide
#                                               vae-core also against the fast workspace
#                                               tests (see below); slow per mutant
#   JOBS=2 scripts/mutants.sh                   parallel builds (default 1)
#
# Too slow for CI (not in .ci/run): the times of a whole run are in docs/contributing.md
# ("Mutation testing"). The first run builds the dependencies; vae-core's mutants take
# about four times longer with its doctests (each its own binary) than without, hence the
# two passes below. `--shard K/N --sharding round-robin` runs every Nth mutant, spread
# over all files.
#
# Which tests run for each mutant: the mutated crate's own (`cargo test -p CRATE`: unit
# tests, integration tests and doctests). vae-core in two passes (DOCTESTS=last, the
# default for it): first its unit tests alone (`-- --lib --tests`), then the mutants
# that survive them again with every test, doctests included (`--iterate`, with every
# other mutant marked as caught); the counts printed are those of the two together.
# DOCTESTS=always runs one pass with everything. With TESTS=workspace, vae-core's
# mutants also run the workspace crate vae-tests' files that need neither a training
# run nor QEMU (format, format_properties, quantization), in one pass; that rebuilds
# the trainer (a dev-dependency of vae-tests, on dfdx) for every mutant, so it is meant
# for a few (`--re`, `--file`). firmware.rs (QEMU) and the files that train are left out.
#
# The assembly kernels (vae-core/src/kernels/cortex_m4f.rs, cortex_m0.rs, rv32.rs) are
# not mutated: they are chosen inside `cfg_if!`, which cargo-mutants does not follow,
# and are not built on the host; the firmware's QEMU tests compare them with the host.
# Output: target/mutants/CRATE/mutants.out (caught.txt, missed.txt, unviable.txt,
# timeout.txt, outcomes.json, a log per mutant); the first pass's in
# target/mutants/CRATE-pass1.
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

# One target folder for every run, outside the scratch copies cargo-mutants makes (and
# deletes), so that only the first run builds the dependencies. With one job the builds
# take turns on it anyway; with more, each copy keeps its own.
if [[ "$JOBS" == 1 ]]; then
  export CARGO_TARGET_DIR="${MUTANTS_TARGET_DIR:-$PWD/target/mutants/build}"
fi

# Lines in a mutants.out list (0 when the file is missing or empty).
count() {
  if [[ -s "$1" ]]; then
    wc -l <"$1" | tr -d ' '
  else
    echo 0
  fi
}

# cargo mutants for one crate; exit codes 0 (all caught), 2 (some missed) and 3 (some
# timed out) are results, anything else a failure of the run itself (the unmutated
# tree failing its tests, a bad argument).
mutants() {
  local rc=0
  cargo mutants --jobs "$JOBS" "$@" || rc=$?
  case "$rc" in
    0 | 2 | 3) ;;
    *)
      echo "cargo mutants failed (exit $rc): $*" >&2
      exit "$rc"
      ;;
  esac
}

summary=()
status=0
for crate in $CRATES; do
  out="target/mutants/$crate"
  mkdir -p "$out"
  args=(--package "$crate" --test-package "$crate")
  doctests="${DOCTESTS:-always}"
  [[ "$crate" == vae-core ]] && doctests="${DOCTESTS:-last}"
  echo "== cargo mutants: $crate (tests: $TESTS, jobs: $JOBS)"
  earlier_caught=0
  earlier_unviable=0
  if [[ "$TESTS" == workspace && "$crate" == vae-core ]]; then
    # `--test` picks the workspace files; with it, vae-core's unit tests are asked for
    # by `--lib` (its doctests do not run).
    mutants "${args[@]}" --test-package vae-tests --output "$out" "$@" \
      -- --lib --test format --test format_properties --test quantization
  elif [[ "$doctests" == last ]]; then
    echo "-- pass 1: unit tests only"
    mkdir -p "$out-pass1"
    mutants "${args[@]}" --output "$out-pass1" "$@" -- --lib --tests
    first="$out-pass1/mutants.out"
    earlier_caught="$(count "$first/caught.txt")"
    earlier_unviable="$(count "$first/unviable.txt")"
    # Pass 2 runs the survivors of pass 1 and nothing else: every other mutant of the
    # crate goes into previously_caught.txt, which `--iterate` skips. (Not `--shard`
    # again: it would split the shorter list differently.)
    cat "$first/missed.txt" "$first/timeout.txt" >"$out/survivors.txt" 2>/dev/null || true
    rm -rf "$out/mutants.out" "$out/mutants.out.old"
    mkdir -p "$out/mutants.out"
    cargo mutants --list --package "$crate" |
      grep -vxF -f "$out/survivors.txt" >"$out/mutants.out/previously_caught.txt" || true
    pass2=()
    skip=0
    for arg in "$@"; do
      if ((skip)); then
        skip=0
      elif [[ "$arg" == --shard || "$arg" == --sharding ]]; then
        skip=1
      elif [[ "$arg" != --shard=* && "$arg" != --sharding=* ]]; then
        pass2+=("$arg")
      fi
    done
    echo "-- pass 2: the $(count "$out/survivors.txt") survivors again, with every test"
    if [[ -s "$out/survivors.txt" ]]; then
      mutants "${args[@]}" --output "$out" --iterate "${pass2[@]}"
    else
      rm -rf "$out/mutants.out"
    fi
  else
    mutants "${args[@]}" --output "$out" "$@"
  fi
  dir="$out/mutants.out"
  caught=$((earlier_caught + $(count "$dir/caught.txt")))
  missed="$(count "$dir/missed.txt")"
  unviable=$((earlier_unviable + $(count "$dir/unviable.txt")))
  timeout="$(count "$dir/timeout.txt")"
  viable=$((caught + missed + timeout))
  if ((viable > 0)); then
    score="$(awk -v c="$caught" -v v="$viable" 'BEGIN { printf "%.1f %%", 100 * c / v }')"
  else
    score="n/a"
  fi
  summary+=("$(printf '%-9s caught %4d  missed %4d  unviable %4d  timeout %4d  score %s' \
    "$crate" "$caught" "$missed" "$unviable" "$timeout" "$score")")
  if ((missed + timeout > 0)); then
    status=2
    echo "missed or timed out in $crate:"
    cat "$dir/missed.txt" "$dir/timeout.txt" 2>/dev/null | sed 's/^/  /'
  fi
done

echo
echo "== mutation score = caught / (caught + missed + timeout)"
printf '%s\n' "${summary[@]}"
exit "$status"
