#!/usr/bin/env bash
# Builds the CUDA module and the GPU test binaries HERE (no GPU needed) and assembles gpu-carry/,
# the folder a lent GPU machine runs from (scripts/gpu-check.sh): the binaries, libgrove, the module
# and every non-CUDA, non-glibc shared library they need (from ldd), packed as one bundle.tar.xz to
# stay far below the device tool's 64 MiB carry limit. The CUDA, cuBLAS and cuDNN libraries are NOT
# carried: they come from the GPU machine.
#
#   scripts/gpu-prepare.sh [--loose] [--build DIR]
#     --loose      also keep the unpacked files in gpu-carry/ (to try them here)
#     --build DIR  build directory (default: build-cuda)
# Then: device run with carry ["gpu-carry"] and command "bash scripts/gpu-check.sh".
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="$root/build-cuda"
loose=0
while (($#)); do
  case "$1" in
    --loose) loose=1 ;;
    --build) build="$2"; shift ;;
    -h|--help) sed -n '2,13p' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) echo "gpu-prepare: unknown argument '$1'" >&2; exit 2 ;;
  esac
  shift
done

carry="$root/gpu-carry"
jobs="${GROVE_JOBS:-2}"

echo "gpu-prepare: configuring $build (sm_90)"
cmake -S "$root" -B "$build" -DGROVE_CUDA_ARCHS=90 >/dev/null
gpu_tests=()
for src in "$root"/tests/gpu/test_*.c; do
  [[ -e "$src" ]] || continue
  name="$(basename "$src" .c)"
  gpu_tests+=("$name")
done
targets=(grove_cuda test_hd_arith "${gpu_tests[@]}" bench_unet bench_grpo)
echo "gpu-prepare: building ${targets[*]}"
cmake --build "$build" -j"$jobs" --target "${targets[@]}"
# The CLI (`grove version` describes the GPU) is welcome but not required.
cmake --build "$build" -j"$jobs" --target grove_cli ||
  echo "gpu-prepare: warning: the grove CLI did not build; carrying the tests only" >&2
[[ -f "$build/libgrove_cuda.so" ]] || {
  echo "gpu-prepare: $build/libgrove_cuda.so was not built (configure said: CUDA module off?)" >&2
  exit 1
}

rm -rf "$carry"
mkdir -p "$carry/stage/bin" "$carry/stage/lib"
stage="$carry/stage"
cp "$build/libgrove_cuda.so" "$build/libgrove.so" "$stage/lib/"
[[ -x "$build/grove" ]] && cp "$build/grove" "$stage/bin/"
for t in test_hd_arith "${gpu_tests[@]}"; do cp "$build/tests/$t" "$stage/bin/"; done
for b in bench_unet bench_grpo; do cp "$build/bench/$b" "$stage/bin/"; done

# Libraries the device provides, or that must match its C library: never carried.
skip_re='^(linux-vdso|ld-linux|libc\.so|libm\.so|libdl\.so|libpthread\.so|librt\.so|libresolv\.so'
skip_re+='|libutil\.so|libanl\.so|libstdc\+\+\.so|libgcc_s\.so|libcuda\.so|libcudart\.so'
skip_re+='|libcublas|libcublasLt|libcudnn|libnvrtc|libnvJitLink|libgrove)'
for f in "$stage"/bin/* "$stage"/lib/*; do
  LD_LIBRARY_PATH="$stage/lib" ldd "$f" | awk '/=> \// {print $1, $3}'
done | sort -u | while read -r name path; do
  if [[ "$name" =~ $skip_re ]]; then continue; fi
  cp -L "$path" "$stage/lib/$name"
done
chmod u+w "$stage"/lib/* "$stage"/bin/*
strip --strip-debug "$stage"/lib/* "$stage"/bin/* 2>/dev/null || true

glibc_need="$(for f in "$stage"/bin/* "$stage"/lib/*; do objdump -T "$f" 2>/dev/null; done |
  grep -oE 'GLIBC_[0-9.]+' | sort -uV | tail -1)"
{
  echo "grove gpu-carry"
  echo "commit: $(git -C "$root" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)"
  echo "built: $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(uname -n)"
  echo "needs: $glibc_need or newer on the device; CUDA 13 runtime + cuBLAS 13 + cuDNN 9 there"
  echo "gpu_tests: ${gpu_tests[*]}"
  (cd "$stage" && find . -type f | sort)
} >"$stage/MANIFEST.txt"

tar -C "$stage" -cJf "$carry/bundle.tar.xz" .
if ((loose)); then
  mv "$stage" "$carry/loose"
else
  rm -rf "$stage"
fi
du -sh "$carry/bundle.tar.xz"
echo "gpu-prepare: $carry ready (carry it; then run scripts/gpu-check.sh on the device)"
