#!/usr/bin/env bash
# The README's main command: install dependencies, build for the CPU, align the shipped MNIST model
# on the default config (configs/align/mnist-flowgrpo.yaml: Flow-GRPO, no CFG, classifier reward)
# and end with a comparison of the base and the aligned model from identical noise: the gold
# judge's held-out scores and PNG grids per prompt. (The HTML gallery is its own issue; until it
# lands the comparison is these grids and JSON lines.) Extra arguments go to `grove train`.
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
while IFS= read -r prompt; do
  [ -n "$prompt" ] || continue
  name="${prompt// /-}"
  "$build/grove" sample --ckpt "$base" --prompt "$prompt" -n 16 --seed 7 --out "$out/$name.base.png" >/dev/null
  "$build/grove" sample --ckpt "$run/last.h5" --prompt "$prompt" -n 16 --seed 7 --out "$out/$name.aligned.png" >/dev/null
done < <(grep -v "^#" configs/prompts/mnist-eval.txt | head -n 10)
echo "base vs aligned grids (same seeds): $repo/$out/"
