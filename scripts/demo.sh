#!/usr/bin/env bash
# The README's main command: install dependencies, build for the CPU, align the shipped MNIST model
# on the default config (configs/align/mnist-flowgrpo.yaml: Flow-GRPO, no CFG, classifier reward)
# and end with a comparison of the base and the aligned model from identical noise: the gold
# judge's held-out scores (JSON lines) and the preference gallery (index.html, whose path it
# prints last). Extra arguments go to `grove train`.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${GROVE_BUILD_DIR:-$repo/build}"
"$repo/scripts/setup.sh"
"$repo/scripts/build.sh"
cd "$repo"
config=configs/align/mnist-flowgrpo.yaml
run=runs/mnist-flowgrpo
base=models/weights/mnist-unet-s.h5

"$build/grove" train "$config" "$@"

out="$run/compare"
mkdir -p "$out"
echo "held-out prompts, gold judge, guidance 1.0, 1000 samples, identical seeds:"
"$build/grove" eval "$config" --ckpt "$base" -n 1000 | tee "$out/eval-base.json"
"$build/grove" eval "$config" --ckpt "$run/last.h5" -n 1000 | tee "$out/eval-aligned.json"
# The preference gallery: base, middle, best and last checkpoints from identical noise, scored with
# the training and eval rewards, with the run's curves (configs/gallery/mnist.yaml, ~30 s).
"$build/grove" gallery configs/gallery/mnist.yaml
echo "gallery (open it in a browser, offline): $repo/$run/gallery/index.html"
