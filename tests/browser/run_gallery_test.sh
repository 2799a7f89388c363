#!/usr/bin/env bash
# CTest `gallery_browser` (label browser): a tiny real run, its gallery, then the page in headless
# Chromium (gallery_page.mjs). Exits 77 (SKIP_RETURN_CODE) only when Chromium is not installed.
#   tests/browser/run_gallery_test.sh BUILD_DIR
set -euo pipefail
src="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
build="$1"
if [ -z "${GROVE_CHROMIUM:-}" ] && [ ! -x /usr/bin/chromium ] && [ ! -x /usr/bin/chromium-browser ]; then
  echo "SKIP: Chromium is not installed (scripts/setup.sh installs Debian's chromium)"
  exit 77
fi
out="$build/test-gallery"
rm -rf "$out"
mkdir -p "$out"
"$build/grove" train "$src/tests/data/gallery/run.yaml" --set "run.dir=$out/run" >"$out/train.log" 2>&1 \
  || { cat "$out/train.log"; exit 1; }
"$build/grove" gallery "$src/tests/data/gallery/tiny.yaml" --set "run=$out/run" --set "out=$out/gallery"
node "$src/tests/browser/gallery_page.mjs" "$out/gallery/index.html" "$out/browser" "$build/grove" 36
