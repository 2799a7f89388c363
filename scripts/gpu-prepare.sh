#!/usr/bin/env bash
# Builds the CUDA module and the GPU test binaries HERE (no GPU needed) and assembles gpu-carry/,
# the folder a lent GPU machine runs from (scripts/gpu-check.sh): the binaries, libgrove, the module
# and every non-CUDA, non-glibc shared library they need (from ldd), packed as one bundle.tar.xz to
# stay far below the device tool's 64 MiB carry limit. The CUDA, cuBLAS and cuDNN libraries are NOT
# carried: they come from the GPU machine. Neither is oneDNN (38 MB): the build is configured with
# GROVE_ONEDNN=OFF, and from a oneDNN build (--no-build) the carried libgrove.so is its
# <build>/carry-lib/ twin (the same objects without oneDNN, CMakeLists.txt); the CPU side of the GPU
# parity tests is then the reference kernels. A carry that would hold libdnnl is refused. HDF5 stays
# (libgrove links it for checkpoints and datasets; bench_grpo loads the shipped weights): 3.9 MB
# unpacked, 1.2 MB of the 9.2 MB bundle.
#
#   scripts/gpu-prepare.sh [--loose] [--build DIR] [--no-build] [--no-pack] [--carry DIR] [--check]
#     --loose      also keep the unpacked files in gpu-carry/ (to try them here)
#     --build DIR  build directory (default: build-cuda)
#     --no-build   assemble from DIR as it is (no configure, no build)
#     --no-pack    no bundle.tar.xz: the unpacked files only (implies --loose)
#     --carry DIR  output folder (default: gpu-carry in the source root)
#     --check      then run the unpacked folder in a clean environment (env -i, only the carried
#                  libraries and the CUDA tree's on LD_LIBRARY_PATH): `grove version` starts and
#                  names the cuda backend's state and a cpu backend without oneDNN, every
#                  carried test starts and passes or skips its GPU tests with a message (the
#                  CTest gpu_carry_clean_env runs this here)
# Then: device run with carry ["gpu-carry"] and command "bash scripts/gpu-check.sh".
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="$root/build-cuda"
carry="$root/gpu-carry"
loose=0
do_build=1
pack=1
check=0
while (($#)); do
  case "$1" in
    --loose) loose=1 ;;
    --build) build="$2"; shift ;;
    --no-build) do_build=0 ;;
    --no-pack) pack=0; loose=1 ;;
    --carry) carry="$2"; shift ;;
    --check) check=1 ;;
    -h|--help) sed -n '2,24p' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) echo "gpu-prepare: unknown argument '$1'" >&2; exit 2 ;;
  esac
  shift
done

jobs="${GROVE_JOBS:-2}"

if ((do_build)); then
  echo "gpu-prepare: configuring $build (sm_90, GROVE_ONEDNN=OFF)"
  cmake -S "$root" -B "$build" -DGROVE_CUDA=ON -DGROVE_CUDA_ARCHS=90 -DGROVE_ONEDNN=OFF >/dev/null
fi
gpu_tests=()
for src in "$root"/tests/gpu/test_*.c; do
  [[ -e "$src" ]] || continue
  name="$(basename "$src" .c)"
  gpu_tests+=("$name")
done
targets=(grove_cuda test_hd_arith "${gpu_tests[@]}" bench_unet bench_grpo)
if ((do_build)); then
  echo "gpu-prepare: building ${targets[*]}"
  cmake --build "$build" -j"$jobs" --target "${targets[@]}"
  # The CLI (`grove version` describes the GPU) is welcome but not required.
  cmake --build "$build" -j"$jobs" --target grove_cli ||
    echo "gpu-prepare: warning: the grove CLI did not build; carrying the tests only" >&2
fi
[[ -f "$build/libgrove_cuda.so" ]] || {
  echo "gpu-prepare: $build/libgrove_cuda.so was not built (configure said: CUDA module off?)" >&2
  exit 1
}

rm -rf "$carry"
mkdir -p "$carry/stage/bin" "$carry/stage/lib"
stage="$carry/stage"
cp "$build/libgrove_cuda.so" "$stage/lib/"
# libgrove without oneDNN: a GROVE_ONEDNN=OFF build's own, else a oneDNN build's carry-lib twin.
libgrove="$build/libgrove.so"
[[ -f "$build/carry-lib/libgrove.so" ]] && libgrove="$build/carry-lib/libgrove.so"
cp "$libgrove" "$stage/lib/"
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
if compgen -G "$stage/lib/libdnnl*" >/dev/null; then
  echo "gpu-prepare: oneDNN would be carried (from $libgrove): build with -DGROVE_ONEDNN=OFF," \
    "or build the grove_carry target of a oneDNN build" >&2
  exit 1
fi
((pack)) && { strip --strip-debug "$stage"/lib/* "$stage"/bin/* 2>/dev/null || true; }

glibc_need="$(for f in "$stage"/bin/* "$stage"/lib/*; do objdump -T "$f" 2>/dev/null; done |
  grep -oE 'GLIBC_[0-9.]+' | sort -uV | tail -1)"
{
  echo "grove gpu-carry"
  echo "commit: $(git -C "$root" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)"
  echo "built: $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(uname -n)"
  echo "needs: $glibc_need or newer on the device; CUDA 13 runtime + cuBLAS 13 + cuDNN 9 there"
  echo "gpu_tests: ${gpu_tests[*]}"
  echo "libgrove: without oneDNN (CPU conv/matmul = the reference kernels), from ${libgrove#"$build"/}"
  echo "unpacked: $(du -sk "$stage" | cut -f1) KiB, of which HDF5 (+ libsz, libaec)" \
    "$(cat "$stage"/lib/libhdf5* "$stage"/lib/libsz* "$stage"/lib/libaec* 2>/dev/null | wc -c) bytes"
  (cd "$stage" && find . -type f | sort)
} >"$stage/MANIFEST.txt"

if ((pack)); then
  tar -C "$stage" -cJf "$carry/bundle.tar.xz" .
  du -sh "$carry/bundle.tar.xz"
fi
if ((loose)); then
  mv "$stage" "$carry/loose"
else
  rm -rf "$stage"
fi
echo "gpu-prepare: $carry ready (carry it; then run scripts/gpu-check.sh on the device)"
((check)) || exit 0

# ---- the carried folder in a clean environment ----------------------------------------------------
# Only the carried libraries and the CUDA tree's (what the device provides) are visible; no
# GROVE_* variable but the module path. A binary that cannot start fails; a GPU test must pass or
# skip with its reason (here, without a GPU: skip).
dir="$carry/loose"
cuda_lib=""
for d in "${CUDA_HOME:-}" /usr/local/cuda; do
  [[ -n "$d" && -d "$d/lib64" ]] && { cuda_lib="$d/lib64"; break; }
done
clean() { env -i PATH=/usr/bin:/bin LD_LIBRARY_PATH="$dir/lib${cuda_lib:+:$cuda_lib}" \
  GROVE_CUDA_MODULE="$dir/lib/libgrove_cuda.so" "$@"; }
fails=0
if [[ -x "$dir/bin/grove" ]]; then
  if out="$(clean "$dir/bin/grove" version 2>&1)" && grep -q '^  cuda ' <<<"$out" &&
    grep -q '^  cpu .*no oneDNN' <<<"$out"; then
    echo "gpu-prepare check: grove version: $(grep '^  cpu ' <<<"$out" | tr -s ' ')"
    echo "gpu-prepare check: grove version: $(grep '^  cuda ' <<<"$out" | tr -s ' ')"
  else
    echo "gpu-prepare check: FAIL grove version did not start, names no cuda backend or" \
      "a cpu backend with oneDNN:" >&2
    echo "$out" >&2
    fails=$((fails + 1))
  fi
fi
for t in "$dir"/bin/test_*; do
  name="$(basename "$t")"
  rc=0
  out="$(clean "$t" --jobs 1 --verbose 2>&1)" || rc=$?
  synth="$(grep -m1 'Synthesis' <<<"$out" || true)"
  skips="$(grep -c '\[SKIP\]' <<<"$out" || true)"
  if ((rc != 0)) || [[ -z "$synth" ]]; then
    echo "gpu-prepare check: FAIL $name (exit $rc): $(tail -3 <<<"$out")" >&2
    fails=$((fails + 1))
  elif ((skips > 0)) && ! grep -q '\[SKIP\].*: .' <<<"$out"; then
    echo "gpu-prepare check: FAIL $name skipped without a reason" >&2
    fails=$((fails + 1))
  else
    echo "gpu-prepare check: $name starts: ${synth#*Synthesis: }, $skips skipped" \
      "($(grep -m1 -o 'SKIP\].*' <<<"$out" | sed 's/^SKIP\] [^ ]*: //' || echo 'none'))"
  fi
done
((fails == 0)) || { echo "gpu-prepare check: $fails failure(s)" >&2; exit 1; }
echo "gpu-prepare check: the carried folder runs in a clean environment"
