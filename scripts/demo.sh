#!/usr/bin/env bash
# The README's main command: install dependencies, build for the CPU, align the default model on
# the default config (configs/align/mnist-flowgrpo.yaml) and end with a gallery of the run.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${GROVE_BUILD_DIR:-$repo/build}"
"$repo/scripts/setup.sh"
"$repo/scripts/build.sh"
cd "$repo"
"$build/grove" train configs/align/mnist-flowgrpo.yaml "$@"
"$build/grove" gallery --run runs/mnist-flowgrpo
