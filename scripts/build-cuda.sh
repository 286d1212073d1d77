#!/usr/bin/env bash
# Builds the CUDA trainer (`vae` with --features cuda) on a machine without a CUDA
# toolkit or GPU, for a GPU machine with CUDA 13 and no Rust toolchain:
#  - nvcc, cuda.h and the CUDA 13 libraries come from PyPI wheels, installed into a
#    throwaway virtual environment (target/cuda-venv, git-ignored; nothing downloaded
#    is committed);
#  - dfdx compiles its kernels to PTX for CUDA_COMPUTE_CAP (default 90: H100/H200); its
#    build script asks `nvidia-smi` first in any case, so a shim on PATH answers with
#    that capability (the real one needs a GPU);
#  - libcuda is the NVIDIA driver, which no wheel carries: the binary is linked against a
#    stub with its soname (libcuda.so.1), and the driver's real library is loaded at
#    start on the GPU machine.
# Output: target/cuda-bundle/vae and run.sh, which finds the CUDA libraries there.
#
#   scripts/build-cuda.sh                      # then copy target/cuda-bundle and data/mnist
#   CUDA_COMPUTE_CAP=89 scripts/build-cuda.sh  # another GPU generation (here: Ada)
set -euo pipefail
cd "$(dirname "$0")/.."

cap="${CUDA_COMPUTE_CAP:-90}"
venv=target/cuda-venv
if ! [[ -x $venv/bin/python ]]; then
  python3 -m venv "$venv"
fi
"$venv/bin/pip" install -q nvidia-cuda-nvcc nvidia-cuda-runtime nvidia-cuda-cccl nvidia-cublas nvidia-curand \
  nvidia-cuda-nvrtc
root="$("$venv/bin/python" -c 'import nvidia, os; print(os.path.join(nvidia.__path__[0], "cu13"))')"
[[ -x $root/bin/nvcc && -f $root/include/cuda.h ]] || { echo "error: no nvcc or cuda.h under $root" >&2; exit 1; }

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
# With an explicit --target these flags reach the binary only, not build scripts.
host="$(rustc -vV | sed -n 's/^host: //p')"
export CARGO_TARGET_$(echo "$host" | tr 'a-z-' 'A-Z_')_RUSTFLAGS="-L native=$link -C link-arg=-Wl,--unresolved-symbols=ignore-in-object-files -C link-arg=-Wl,--push-state,--no-as-needed,-lcuda,--pop-state"
cargo build --release --locked -p trainer --bin vae --features cuda --target-dir target/cuda \
  --target "$host"

bundle=target/cuda-bundle
mkdir -p "$bundle"
cp "target/cuda/$host/release/vae" "$bundle/vae"
cat > "$bundle/run.sh" <<'RUN'
#!/usr/bin/env bash
# Runs the CUDA `vae` against this machine's CUDA 13 libraries: the system's, or those
# of an installed PyTorch (pip's nvidia/cu13 folder) when the system has none.
here="$(cd "$(dirname "$0")" && pwd)"
extra="$(python3 -c 'import nvidia, os; print(os.path.join(nvidia.__path__[0], "cu13", "lib"))' 2>/dev/null || true)"
export LD_LIBRARY_PATH="${extra:+$extra:}/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}"
exec "$here/vae" "$@"
RUN
chmod +x "$bundle/run.sh"
echo "built $bundle/vae for compute capability $cap:"
ldd "$bundle/vae" | grep -E 'cuda|cublas|curand|nvrtc' || true
