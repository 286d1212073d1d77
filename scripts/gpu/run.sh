#!/usr/bin/env bash
# The CUDA `vae`, run against this machine's CUDA libraries (see env.sh):
#   ./run.sh train --device cuda --data-dir mnist --out runs/default
source "$(dirname "$0")/env.sh"
check_libraries || exit 1
exec "$bundle/vae" "$@"
