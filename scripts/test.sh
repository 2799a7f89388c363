#!/usr/bin/env bash
# The README's test command: install dependencies, build, run every test label except `slow`.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${GROVE_BUILD_DIR:-$repo/build}"
"$repo/scripts/setup.sh"
"$repo/scripts/build.sh"
ctest --test-dir "$build" --label-exclude slow --output-on-failure --no-tests=error -j 2
