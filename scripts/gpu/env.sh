# Sourced by the CUDA bundle's scripts (run.sh, gpu-check.sh): points the dynamic loader
# at this machine's CUDA 13 libraries (the system's, or those of an installed PyTorch:
# pip's nvidia/cu13 folder), then checks that the bundle's binaries find everything they
# link. Where one is missing it says in one line what, and returns 1: a CUDA build of
# cudarc 0.9 links libcuda at build time, and without the NVIDIA driver would otherwise
# die in the dynamic loader before `main`.
bundle="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
torch_libs="$(python3 -c 'import nvidia, os; print(os.path.join(nvidia.__path__[0], "cu13", "lib"))' 2>/dev/null || true)"
export LD_LIBRARY_PATH="${torch_libs:+$torch_libs:}/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}"

check_libraries() {
  local missing
  command -v ldd >/dev/null || return 0 # the loader's own message will have to do
  missing="$(ldd "$bundle/vae" "$bundle/train_bench" 2>/dev/null | awk '/not found/ { print $1 }' | sort -u | xargs)"
  if [[ $missing == *libcuda.so* ]]; then
    echo "error: no NVIDIA driver here (libcuda.so.1 not found): the CUDA bundle needs a machine with an NVIDIA GPU and its driver; use the ordinary CPU build of \`vae\` elsewhere" >&2
    return 1
  elif [[ -n $missing ]]; then
    echo "error: CUDA 13 libraries not found ($missing): install the CUDA 13 toolkit or PyTorch for CUDA 13 (pip's nvidia/cu13), or add their folder to LD_LIBRARY_PATH" >&2
    return 1
  fi
}
