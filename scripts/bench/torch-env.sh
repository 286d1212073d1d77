# Sourced by the benchmark scripts that run PyTorch beside the trainer: fetches MNIST
# and sets `python` to an interpreter with the pinned PyTorch, installed from PyPI into a
# throwaway virtual environment (target/bench-venv, git-ignored; about 3 GB with the CUDA
# libraries PyPI's Linux wheel pulls in, though only the CPU is used) on first use.
# TORCH_PYTHON=/path/to/python uses an existing installation instead. PyTorch is not a
# dependency of the project.
scripts/fetch-mnist.sh data/mnist >/dev/null
torch_pin="torch==2.11.0 numpy==2.4.6"
python="${TORCH_PYTHON:-target/bench-venv/bin/python}"
if [[ -z ${TORCH_PYTHON:-} ]] && ! "$python" -c "import torch; assert torch.__version__.startswith('2.11.0')" 2>/dev/null; then
  echo "installing $torch_pin into target/bench-venv (PyPI, one time)..."
  python3 -m venv target/bench-venv
  target/bench-venv/bin/pip install -q $torch_pin
fi
