#!/usr/bin/env bash
# Builds the CUDA bundle: everything a GPU machine with the NVIDIA driver and CUDA 13
# libraries (and no Rust toolchain, no network) needs to train, check and time the
# trainer, in one folder to copy there. Runs on a machine without a GPU or CUDA toolkit:
#  - nvcc, cuda.h and the CUDA libraries come from PyPI wheels pinned to CUDA_VERSION
#    (default 13.0), installed into a throwaway virtual environment (target/cuda-venv,
#    git-ignored). A driver loads PTX only up to its own CUDA version: pin CUDA_VERSION to
#    the driver of the GPU machine (`nvidia-smi` says "CUDA Version: X.Y"). The build
#    fails if any PTX in the binaries declares a newer ISA than that version accepts.
#  - dfdx compiles its kernels to PTX for CUDA_COMPUTE_CAP (default 90: H100/H200); its
#    build script asks `nvidia-smi`, so a shim on PATH answers with that capability.
#  - libcuda is the NVIDIA driver, which no wheel carries: the binaries are linked against
#    a stub with its soname (libcuda.so.1); the driver's real one is loaded at start.
#
# Output: target/cuda-bundle/ (under 64 MiB; the build fails otherwise), holding
#   vae            the CUDA trainer             run.sh       launcher for it
#   train_bench    the throughput harness       env.sh       finds the CUDA libraries
#   pytorch_vae.py the PyTorch reference        gpu-check.sh the one script to run there
#   mnist/*.gz     MNIST                        BUILD        commit, CUDA version, PTX ISA
#
#   scripts/build-cuda.sh                        # then copy target/cuda-bundle over, and:
#   target/cuda-bundle/gpu-check.sh OUT_DIR      # on the GPU machine
#   CUDA_VERSION=12.8 CUDA_COMPUTE_CAP=89 scripts/build-cuda.sh   # another driver and GPU
set -euo pipefail
cd "$(dirname "$0")/.."

cuda="${CUDA_VERSION:-13.0}"
cap="${CUDA_COMPUTE_CAP:-90}"

# The wheels of each CUDA release (cuBLAS and cuRAND number their own versions), and the
# newest PTX ISA its driver loads (PTX ISA 9.N ships with CUDA 13.N). nvcc's own
# dependencies are pinned too: unpinned, pip takes the newest nvvm and crt, whose
# front end writes PTX that CUDA 13.0's ptxas and driver refuse.
case "$cuda" in
  13.0) pins=(nvidia-cuda-nvcc==13.0.* nvidia-cuda-crt==13.0.* nvidia-nvvm==13.0.*
              nvidia-cuda-runtime==13.0.* nvidia-cuda-cccl==13.0.* nvidia-cuda-nvrtc==13.0.*
              nvidia-cublas==13.0.* nvidia-curand==10.4.0.*)
        ptx_max=9.0 ;;
  *) echo "error: CUDA_VERSION=$cuda: no wheel pins for it in $0 (known: 13.0); add the" \
       "versions of nvcc, runtime, cccl, nvrtc, cuBLAS and cuRAND that CUDA $cuda ships" >&2
     exit 1 ;;
esac

venv=target/cuda-venv
if ! [[ -x $venv/bin/python ]]; then
  python3 -m venv "$venv"
fi
"$venv/bin/pip" install -q "${pins[@]}"
root="$("$venv/bin/python" -c 'import nvidia, os; print(os.path.join(nvidia.__path__[0], "cu13"))')"
[[ -x $root/bin/nvcc && -f $root/include/cuda.h ]] || { echo "error: no nvcc or cuda.h under $root" >&2; exit 1; }
# Every CUDA toolkit wheel pip installed (also ones a future nvcc may depend on).
stray="$("$venv/bin/pip" list --format=freeze 2>/dev/null \
  | grep -E '^nvidia-(cuda-|nvvm|nvjitlink)' | grep -v "==$cuda\." || true)"
[[ -z $stray ]] || { echo "error: CUDA wheels not of CUDA $cuda: $(echo $stray) (delete $venv)" >&2; exit 1; }
got="$("$root/bin/nvcc" --version | sed -n 's/.*release \([0-9]*\.[0-9]*\).*/\1/p')"
[[ $got == "$cuda" ]] || { echo "error: nvcc is CUDA $got, expected $cuda (stale $venv? delete it)" >&2; exit 1; }

# Unversioned names for the linker, and the driver stub.
link="$PWD/target/cuda-link"
mkdir -p "$link"
for lib in cublas cublasLt curand nvrtc; do
  ln -sf "$(ls "$root"/lib/lib$lib.so.* | head -1)" "$link/lib$lib.so"
done
echo 'void vae_cuda_driver_stub(void) {}' > "$link/stub.c"
cc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$link/libcuda.so" "$link/stub.c"

mkdir -p "$link/bin"
printf '#!/bin/sh\nprintf "compute_cap\\n%s.%s\\n"\n' "${cap%?}" "${cap: -1}" > "$link/bin/nvidia-smi"
chmod +x "$link/bin/nvidia-smi"

export CUDA_ROOT="$root" CUDA_PATH="$root" CUDA_COMPUTE_CAP="$cap"
export PATH="$link/bin:$root/bin:$PATH"
# cudarc's symbols are resolved against the real libcuda.so.1 when the binary starts.
# With an explicit --target these flags reach the binaries only, not build scripts.
host="$(rustc -vV | sed -n 's/^host: //p')"
export CARGO_TARGET_$(echo "$host" | tr 'a-z-' 'A-Z_')_RUSTFLAGS="-L native=$link -C link-arg=-Wl,--unresolved-symbols=ignore-in-object-files -C link-arg=-Wl,--push-state,--no-as-needed,-lcuda,--pop-state"
cargo build --release --locked -p trainer --bin vae --example train_bench --features cuda \
  --target-dir target/cuda --target "$host"

bundle=target/cuda-bundle
rm -rf "$bundle"
mkdir -p "$bundle/mnist"
built="target/cuda/$host/release"
strip -o "$bundle/vae" "$built/vae"
strip -o "$bundle/train_bench" "$built/examples/train_bench"
cp scripts/bench/pytorch_vae.py scripts/bench/pytorch_kernels.py scripts/gpu/gpu-check.sh scripts/gpu/env.sh scripts/gpu/run.sh "$bundle/"

# PTX a driver of CUDA $cuda refuses (CUDA_ERROR_UNSUPPORTED_PTX_VERSION) fails the build.
newest="$(cat "$bundle/vae" "$bundle/train_bench" | strings -n 8 \
  | sed -n 's/^[[:space:]]*\.version \([0-9]*\.[0-9]*\)[[:space:]]*$/\1/p' | sort -uV | tail -1)"
[[ -n $newest ]] || { echo "error: no PTX found in the binaries" >&2; exit 1; }
if [[ "$(printf '%s\n' "$newest" "$ptx_max" | sort -V | tail -1)" != "$ptx_max" ]]; then
  echo "error: the binaries carry PTX ISA $newest; a CUDA $cuda driver loads at most $ptx_max" >&2
  exit 1
fi
# The binaries must not need this machine's paths at run time (dfdx's run-time-compiled
# kernels would look for headers there: see clippy.toml).
for path in "$root/include" "$PWD/target/cuda"; do
  # (grep without -q: with pipefail, -q's early exit would fail the pipeline on a match)
  if strings -n 8 "$bundle/vae" "$bundle/train_bench" | grep -F "$path" >/dev/null; then
    echo "error: the binaries refer to $path, which the GPU machine will not have" >&2
    exit 1
  fi
done

scripts/fetch-mnist.sh data/mnist >/dev/null
for f in data/mnist/*-ubyte; do
  gzip -9cn "$f" > "$bundle/mnist/$(basename "$f").gz"
done
cat > "$bundle/BUILD" <<EOF
commit: $(git rev-parse --short HEAD)$(git diff --quiet HEAD || echo '+changes')
built: $(date -u +%Y-%m-%dT%H:%MZ) on $host
CUDA toolkit: $cuda (nvcc $("$root/bin/nvcc" --version | sed -n 's/.*release \([^ ]*\) .*/\1/p' | tr -d ,)), compute capability $cap
PTX ISA: $newest (a CUDA $cuda driver loads up to $ptx_max)
EOF

size="$(du -sb "$bundle" | cut -f1)"
if (( size > 64 * 1024 * 1024 )); then
  echo "error: $bundle is $((size / 1024 / 1024)) MiB, over the 64 MiB a GPU machine is sent" >&2
  exit 1
fi
echo "built $bundle ($((size / 1024 / 1024)) MiB):"
cat "$bundle/BUILD"
