#!/usr/bin/env bash
# Configures and builds grove in build/ (warnings are errors; the CUDA module, when nvcc and cuDNN
# exist, for one architecture only — see GROVE_CUDA_ARCHS).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${GROVE_BUILD_DIR:-$repo/build}"
cmake -S "$repo" -B "$build" -DGROVE_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j "$(nproc)"
