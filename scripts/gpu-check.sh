#!/usr/bin/env bash
# The ONE script for a lent GPU machine (TOOLCHAIN.md, CUDA): finds the CUDA/cuBLAS/cuDNN libraries
# there, runs the carried binaries (gpu-carry/, made by scripts/gpu-prepare.sh) or, when they cannot
# start, builds with CMake there; then the gpu-labelled tests (test_cuda; test_cuda_parity: every op
# CPU vs CUDA, the 10-step SDE trajectory, one GRPO iteration, ratio == 1; test_cuda_paths: fused
# conv + bias, the cuBLASLt bias epilogue, the device-side masked sampler), the host-arithmetic
# test, `grove version`, an nvidia-smi summary, compute-sanitizer memcheck on the CUDA test, the
# sampler trajectory, the masked sampler and one GRPO training iteration, and the benchmarks
# (bench_unet on CUDA and CPU, bench_grpo on CUDA: one Flow-GRPO iteration of the default config,
# PyTorch's unet-s twin: pretraining, the rollout and one Flow-GRPO iteration, with grove/PyTorch
# ratios).
# Writes exactly two files under $OUT: gpu-check-logs.tar.gz (every log) and summary.json; prints the summary.
# Finishes well under 5 minutes (each step has a timeout; steps are skipped when time runs short).
#
#   bash scripts/gpu-check.sh [--quick]
#     --quick   rerun mode: only the gpu tests and a memcheck of one test (no benchmarks)
# Exit status: 0 when every gpu test ran and passed and memcheck found nothing (memcheck refused or
# unavailable counts as skipped, not failed); 1 otherwise. Benchmarks are figures (status info).
# bench/gpu/torch_unet_s.py is the PyTorch twin of unet-s for the side-by-side ratio (same parameter
# count, fp32, TF32 off).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
quick=0
case "${1:-}" in
  --quick) quick=1 ;;
  "") ;;
  -h|--help) sed -n '2,20p' "${BASH_SOURCE[0]}"; exit 0 ;;
  *) echo "gpu-check: unknown argument '$1'" >&2; exit 2 ;;
esac

out="${OUT:-$root/gpu-check-out}"
mkdir -p "$out"
work="$(mktemp -d "${TMPDIR:-/tmp}/gpu-check.XXXXXX")"
logs="$work/logs"
mkdir -p "$logs"
t0=$SECONDS
budget=270 # seconds for everything; steps that would not fit are skipped

log() { echo "gpu-check: $*" | tee -a "$logs/gpu-check.log" >&2; }
first_line() { # file extended-regex: the first matching line, else the file's last line
  grep -m1 -E "$2" "$1" 2>/dev/null || tail -1 "$1" 2>/dev/null || true
}
left() { echo $((budget - (SECONDS - t0))); }

# ---- results: one entry per step, in order --------------------------------------------------------
steps=()
declare -A st_status st_detail st_counts
record() { # step status detail [counts-json]
  steps+=("$1")
  st_status[$1]="$2"
  st_detail[$1]="$3"
  st_counts[$1]="${4:-}"
  log "$1: $2${3:+ — $3}"
}

json_str() {
  local s
  s="$(printf '%s' "$1" | tr -d '\000-\010\013\014\016-\037')"
  s=${s//\\/\\\\}
  s=${s//\"/\\\"}
  s=${s//$'\n'/\\n}
  s=${s//$'\t'/ }
  s=${s//$'\r'/}
  printf '"%s"' "$s"
}

declare -A facts
fact_keys=()
fact() { fact_keys+=("$1"); facts[$1]="$2"; }

finish() {
  local rc=$? ok=true s
  for s in "${steps[@]}"; do
    case "${st_status[$s]}" in
      passed|info) ;;
      skipped) [[ "$s" == gpu_test_* ]] && ok=false ;; # a gpu test that saw no device is no pass
      *) ok=false ;;
    esac
  done
  ((${#steps[@]})) || ok=false
  {
    printf '{\n  "script": "gpu-check",\n  "mode": %s,\n  "ok": %s,\n  "elapsed_s": %d,\n' \
      "$(json_str "$([[ $quick == 1 ]] && echo quick || echo full)")" "$ok" $((SECONDS - t0))
    printf '  "facts": {'
    local first=1 k
    for k in "${fact_keys[@]}"; do
      ((first)) || printf ','
      first=0
      printf '\n    %s: %s' "$(json_str "$k")" "$(json_str "${facts[$k]}")"
    done
    printf '\n  },\n  "steps": ['
    first=1
    for s in "${steps[@]}"; do
      ((first)) || printf ','
      first=0
      printf '\n    {"step": %s, "status": %s, "detail": %s' "$(json_str "$s")" \
        "$(json_str "${st_status[$s]}")" "$(json_str "${st_detail[$s]}")"
      [[ -n "${st_counts[$s]}" ]] && printf ', %s' "${st_counts[$s]}"
      printf '}'
    done
    printf '\n  ]\n}\n'
  } >"$out/summary.json"
  tar -C "$work" -czf "$out/gpu-check-logs.tar.gz" logs 2>/dev/null || true
  cat "$out/summary.json"
  rm -rf "$work"
  if [[ $ok == true && $rc == 0 ]]; then exit 0; fi
  exit 1
}
trap finish EXIT

# ---- the machine -----------------------------------------------------------------------------------
fact host "$(uname -srm)"
fact glibc "$(ldd --version 2>/dev/null | head -1 || echo unknown)"
if command -v nvidia-smi >/dev/null; then
  nvidia-smi >"$logs/nvidia-smi.txt" 2>&1 || true
  query=name,driver_version,memory.total,memory.used,temperature.gpu,utilization.gpu
  fact gpu "$(nvidia-smi --query-gpu="$query" --format=csv,noheader 2>/dev/null | head -1 ||
    echo 'nvidia-smi query failed')"
else
  fact gpu "nvidia-smi not found"
fi
command -v nvcc >/dev/null && fact nvcc "$(nvcc --version | tail -2 | head -1)"

# ---- CUDA libraries: the CUDA tree, CUDNN_ROOT, ldconfig, Python wheels (nvidia/*/lib) -----------
cand_dirs=()
for d in "${CUDNN_ROOT:-}" "${CUDA_HOME:-}" "${CUDA_PATH:-}" /usr/local/cuda /usr/local/cuda-13*; do
  [[ -n "$d" && -d "$d" ]] || continue
  cand_dirs+=("$d/lib64" "$d/lib" "$d/targets/x86_64-linux/lib")
done
cand_dirs+=(/usr/lib/x86_64-linux-gnu /usr/lib64)
if command -v python3 >/dev/null; then
  while IFS= read -r sp; do
    for d in "$sp"/nvidia/*/lib; do [[ -d "$d" ]] && cand_dirs+=("$d"); done
  done < <(python3 -c 'import site
print("\n".join(site.getsitepackages() + [site.getusersitepackages()]))' 2>/dev/null || true)
fi
cuda_ld=""
cudnn_root=""
for lib in libcudart.so.13 libcublas.so.13 libcublasLt.so.13 libcudnn.so.9; do
  found=""
  for d in "${cand_dirs[@]}"; do
    if [[ -e "$d/$lib" ]]; then found="$d"; break; fi
  done
  if [[ -z "$found" ]]; then
    p="$(ldconfig -p 2>/dev/null | awk -v l="$lib" '$1 == l {print $NF; exit}')"
    [[ -n "$p" ]] && found="$(dirname "$p")"
  fi
  fact "$lib" "${found:-not found}"
  if [[ -n "$found" && ":$cuda_ld:" != *":$found:"* ]]; then cuda_ld="${cuda_ld:+$cuda_ld:}$found"; fi
  if [[ "$lib" == libcudnn.so.9 && -n "$found" ]]; then cudnn_root="$(dirname "$found")"; fi
done

# ---- binaries: carried, else built here -----------------------------------------------------------
bin_dir=""
lib_dir=""
carried="$root/gpu-carry"
if [[ -f "$carried/bundle.tar.xz" ]]; then
  mkdir -p "$work/carry"
  tar -C "$work/carry" -xJf "$carried/bundle.tar.xz"
  cp "$work/carry/MANIFEST.txt" "$logs/carry-MANIFEST.txt" 2>/dev/null || true
  bin_dir="$work/carry/bin"
  lib_dir="$work/carry/lib"
elif [[ -d "$carried/loose/bin" ]]; then
  bin_dir="$carried/loose/bin"
  lib_dir="$carried/loose/lib"
fi
starts() { # binary: does it load (all libraries resolved)?
  LD_LIBRARY_PATH="$lib_dir${cuda_ld:+:$cuda_ld}" timeout 30 "$1" --list >"$logs/start-$(basename "$1").txt" 2>&1
}
gpu_tests=()
if [[ -n "$bin_dir" ]]; then
  for f in "$bin_dir"/test_*; do
    [[ "$(basename "$f")" == test_hd_arith ]] || gpu_tests+=("$(basename "$f")")
  done
  if ((${#gpu_tests[@]})) && starts "$bin_dir/${gpu_tests[0]}"; then
    record binaries passed "carried binaries start ($(first_line "$logs/carry-MANIFEST.txt" '^built:'))"
  else
    LD_LIBRARY_PATH="$lib_dir${cuda_ld:+:$cuda_ld}" ldd "$bin_dir"/* "$lib_dir"/libgrove_cuda.so \
      >"$logs/ldd-carried.txt" 2>&1 || true
    log "carried binaries do not start (see start-*.txt, ldd-carried.txt); building here"
    bin_dir=""
  fi
else
  log "no gpu-carry/ bundle; building here"
fi

if [[ -z "$bin_dir" ]]; then
  build="$work/build"
  cfg=(-DGROVE_CUDA_ARCHS=90 -DCMAKE_BUILD_TYPE=RelWithDebInfo -DGROVE_ONEDNN=OFF) # as carried
  [[ -n "$cudnn_root" ]] && cfg+=(-DCUDNN_ROOT="$cudnn_root")
  if ! command -v cmake >/dev/null; then
    record build failed "no carried binaries that start and no cmake on this machine"
    exit 1
  fi
  if ! timeout 120 cmake -S "$root" -B "$build" "${cfg[@]}" >"$logs/build-configure.txt" 2>&1; then
    record build failed "cmake configure failed here (CPU-only dependencies missing?): \
$(first_line "$logs/build-configure.txt" '[Ee]rror|[Cc]ould not')"
    exit 1
  fi
  gpu_tests=()
  for src in "$root"/tests/gpu/test_*.c; do [[ -e "$src" ]] && gpu_tests+=("$(basename "$src" .c)"); done
  targets=(grove_cuda "${gpu_tests[@]}")
  ((quick)) || targets+=(test_hd_arith bench_unet bench_grpo)
  if ! timeout "$(($(left) - 90))" cmake --build "$build" -j"$(nproc)" --target "${targets[@]}" \
    >"$logs/build.txt" 2>&1; then
    record build failed "build failed here: $(first_line "$logs/build.txt" 'error')"
    exit 1
  fi
  mkdir -p "$work/bin"
  for t in "${targets[@]}"; do
    for d in "$build/tests" "$build/bench"; do [[ -x "$d/$t" ]] && cp "$d/$t" "$work/bin/"; done
  done
  bin_dir="$work/bin"
  lib_dir="$build"
  record build passed "built here with CMake (sm_90)"
fi

export LD_LIBRARY_PATH="$lib_dir${cuda_ld:+:$cuda_ld}"
export GROVE_CUDA_MODULE="$lib_dir/libgrove_cuda.so"
fact LD_LIBRARY_PATH "$LD_LIBRARY_PATH"

# ---- tests ----------------------------------------------------------------------------------------
# Criterion's "Synthesis: Tested: N | Passing: N | Failing: N | Crashing: N" line, as JSON fields.
counts_of() {
  local n='([0-9]+)'
  sed -nE "s/.*Tested: $n \\| Passing: $n \\| Failing: $n \\| Crashing: $n.*/\
\"tested\": \\1, \"passing\": \\2, \"failing\": \\3, \"crashing\": \\4/p" "$1" | tail -1
}
run_test() { # step binary timeout [criterion args...]
  local step=$1 bin=$2 limit=$3 rc=0
  shift 3
  if (($(left) < limit / 2)); then record "$step" skipped "not enough time left"; return; fi
  timeout "$limit" "$bin_dir/$bin" --verbose --jobs 1 "$@" >"$logs/$step.txt" 2>&1 || rc=$?
  local counts tested passing skip
  counts="$(counts_of "$logs/$step.txt")"
  tested="$(sed -nE 's/.*"tested": ([0-9]+).*/\1/p' <<<"$counts")"
  passing="$(sed -nE 's/.*"passing": ([0-9]+).*/\1/p' <<<"$counts")"
  skip="$(grep -m1 '\[SKIP\]' "$logs/$step.txt" || true)"
  if ((rc == 124)); then
    record "$step" failed "timed out after ${limit}s" "$counts"
  elif ((rc != 0)); then
    record "$step" failed "exit $rc: $(first_line "$logs/$step.txt" 'Assertion Failed|FAIL|CRASH|error')" \
      "$counts"
  elif [[ -n "$skip" ]]; then # a skipped gpu test saw no device (or no module): not a pass
    record "$step" skipped "${passing:-0} passed, $(grep -c '\[SKIP\]' "$logs/$step.txt") skipped: ${skip#*: }" "$counts"
  elif [[ -n "$tested" && "$tested" == "$passing" ]]; then
    record "$step" passed "$tested tests" "$counts"
  else
    record "$step" failed "unexpected result (rc $rc, counts: ${counts:-none})" "$counts"
  fi
}

for t in "${gpu_tests[@]}"; do
  case "$t" in # the parity test is one process per op (module + CUDA start each): 4 at a time
    test_cuda_parity) run_test "gpu_test_$t" "$t" 150 --jobs 4 ;;
    *) run_test "gpu_test_$t" "$t" 90 ;;
  esac
done
if ((!quick)) && [[ -x "$bin_dir/test_hd_arith" ]]; then run_test cpu_test_hd_arith test_hd_arith 60; fi

if ((!quick)); then
  grove_bin=""
  [[ -x "$bin_dir/grove" ]] && grove_bin="$bin_dir/grove"
  if [[ -n "$grove_bin" ]]; then
    rc=0
    timeout 30 "$grove_bin" version >"$logs/grove-version.txt" 2>&1 || rc=$?
    record grove_version info "exit $rc: $(first_line "$logs/grove-version.txt" 'cuda')"
  fi
fi

# ---- compute-sanitizer memcheck on the CUDA test ----------------------------------------------------
sanitizer="$(command -v compute-sanitizer || true)"
for d in "${CUDA_HOME:-}" /usr/local/cuda; do
  [[ -z "$sanitizer" && -n "$d" && -x "$d/bin/compute-sanitizer" ]] && sanitizer="$d/bin/compute-sanitizer"
done
if [[ -z "$sanitizer" ]]; then
  record memcheck skipped "compute-sanitizer not found"
elif [[ ! -x "$bin_dir/test_cuda" ]]; then
  record memcheck skipped "no test_cuda binary"
elif (($(left) < 40)); then
  record memcheck skipped "not enough time left"
else
  limit=$(($(left) - 15))
  ((limit > 90)) && limit=90 # leaves the benchmarks their time
  filter=()
  ((quick)) && filter=(--filter 'cuda/elementwise_vs_cpu')
  rc=0
  # API errors are off: the test provokes a failed cudaMalloc on purpose (the OOM message check);
  # grove checks every API call itself. Criterion re-executes itself per test: follow children.
  timeout "$limit" "$sanitizer" --tool memcheck --target-processes all --report-api-errors no \
    --error-exitcode 99 "$bin_dir/test_cuda" --jobs 1 "${filter[@]}" >"$logs/memcheck.txt" 2>&1 || rc=$?
  summary_line="$(grep -E 'ERROR SUMMARY' "$logs/memcheck.txt" | tail -1 || true)"
  errors="$(grep -E 'ERROR SUMMARY' "$logs/memcheck.txt" | sed -nE 's/.*ERROR SUMMARY: ([0-9]+) error.*/\1/p' |
    awk '{s += $1} END {print s + 0}')"
  if ((rc == 124)); then
    record memcheck skipped "timed out after ${limit}s (memcheck is slow; not a finding)"
  elif [[ -z "$summary_line" ]]; then
    record memcheck skipped "compute-sanitizer refused or could not attach: $(tail -1 "$logs/memcheck.txt")"
  elif ((errors > 0 || rc == 99)); then
    record memcheck failed "$errors memcheck error(s): \
$(first_line "$logs/memcheck.txt" '^========= (Invalid|Program hit|Uninitialized|Leaked)')"
  elif ((rc != 0)); then
    record memcheck failed "test failed under memcheck (exit $rc)"
  else
    record memcheck passed "$summary_line"
  fi
fi

# ---- memcheck on short loops: the SDE sampling loop (10 steps of a denoiser on the op table), the
# device-side masked sampler, and one GRPO training iteration (rollout, rewards, loss, backward) ----
memcheck_run() { # step limit binary criterion-filter
  local step=$1 limit=$2 bin=$3 pattern=$4 rc=0 errors
  if [[ ! -x "$bin_dir/$bin" ]]; then record "$step" skipped "no $bin binary"; return; fi
  if (($(left) < limit + 15)); then record "$step" skipped "not enough time left"; return; fi
  timeout "$limit" "$sanitizer" --tool memcheck --target-processes all --error-exitcode 99 \
    "$bin_dir/$bin" --jobs 1 --filter "$pattern" >"$logs/$step.txt" 2>&1 || rc=$?
  errors="$(sed -nE 's/.*ERROR SUMMARY: ([0-9]+) error.*/\1/p' "$logs/$step.txt" |
    awk '{s += $1} END {print s + 0}')"
  if ((rc == 124)); then
    record "$step" skipped "timed out after ${limit}s (memcheck is slow; not a finding)"
  elif ! grep -q 'ERROR SUMMARY' "$logs/$step.txt"; then
    record "$step" skipped "compute-sanitizer refused: $(tail -1 "$logs/$step.txt")"
  elif ((errors > 0 || rc != 0)); then
    record "$step" failed "$errors error(s), exit $rc"
  else
    record "$step" passed "$(grep 'ERROR SUMMARY' "$logs/$step.txt" | tail -1)"
  fi
}
if ((!quick)) && [[ -n "$sanitizer" ]]; then
  memcheck_run memcheck_trajectory 45 test_cuda_parity 'cuda_parity/sde_trajectory*'
  memcheck_run memcheck_masked_sampler 30 test_cuda_paths 'cuda_paths/masked_sampler*'
  memcheck_run memcheck_training 60 test_cuda_parity 'cuda_parity/grpo_iteration*'
fi

# ---- benchmarks: figures, never a failure -----------------------------------------------------------
run_bench() { # step timeout device command...
  local step=$1 limit=$2 dev=$3 rc=0
  shift 3
  if [[ ! -x "$bin_dir/$1" ]]; then record "$step" skipped "no $1 binary"; return; fi
  if (($(left) < limit)); then record "$step" skipped "not enough time left"; return; fi
  local bin="$bin_dir/$1"
  shift
  GROVE_BENCH_DEVICE="$dev" timeout "$limit" "$bin" "$@" >"$logs/$step.txt" 2>&1 || rc=$?
  local figures
  figures="$(grep -E 'step|images/s|iteration ' "$logs/$step.txt" | tr -s ' ' | tr '\n' ';' |
    head -c 400 || true)"
  record "$step" info "exit $rc: ${figures:-$(tail -1 "$logs/$step.txt")}"
}
# grove/PyTorch ratios (> 1: grove is faster) from the logs of the steps above: pretraining
# samples/s and 20-step sampling images/s at batch 256 (bench_unet), the default config's rollout
# images/s and Flow-GRPO iteration (bench_grpo's second iteration: the first builds the cuDNN
# plans; torch's mean of its timed iterations).
num_after() { # file extended-regex: the first number after the regex's first match, else empty
  sed -nE "s#.*$2[^0-9]*([0-9]+(\.[0-9]+)?).*#\1#p" "$1" 2>/dev/null | head -1 || true
}
ratio() { # grove torch: grove/torch to 2 decimals, or "n/a"
  if [[ -n "$1" && -n "$2" ]]; then awk -v g="$1" -v t="$2" 'BEGIN {
    if (t > 0) printf "%.2f", g / t; else print "n/a" }'; else echo "n/a"; fi
}
bench_ratios() {
  local g_log="$logs/bench_unet_cuda.txt" r_log="$logs/bench_grpo_cuda.txt"
  local t_log="$logs/bench_torch_unet.txt"
  if [[ ! -s "$t_log" ]] || ! grep -q 'flow-grpo\|train step' "$t_log"; then
    record bench_ratio skipped "no PyTorch figures"
    return
  fi
  local g_train t_train g_samp t_samp g_roll_s t_roll g_train_s g_iter t_iter
  g_train="$(num_after "$g_log" 'train step \(fwd\+bwd\+adam\) +[0-9.]+ ms')"
  t_train="$(num_after "$t_log" 'train step \(fwd\+bwd\+adam\) +[0-9.]+ ms')"
  g_samp="$(num_after "$g_log" 'sampling, 20 Euler steps')"
  t_samp="$(num_after "$t_log" 'sampling, 20 Euler steps')"
  # bench_grpo's "iteration 1: rollout R s, training T s": images/s = 64 / R, iteration = R + T
  g_roll_s="$(num_after "$r_log" 'iteration 1: rollout')"
  g_train_s="$(num_after "$r_log" 'iteration 1: rollout [0-9.]+ s, training')"
  t_roll="$(num_after "$t_log" 'flow-grpo rollout images/s')"
  t_iter="$(num_after "$t_log" 'flow-grpo seconds per iteration')"
  local g_roll="" g_iter_rate="" t_iter_rate=""
  [[ -n "$g_roll_s" ]] && g_roll="$(awk -v r="$g_roll_s" 'BEGIN { if (r > 0) printf "%.2f", 64 / r }')"
  [[ -n "$g_roll_s" && -n "$g_train_s" ]] &&
    g_iter="$(awk -v r="$g_roll_s" -v t="$g_train_s" 'BEGIN { printf "%.2f", r + t }')"
  [[ -n "${g_iter:-}" ]] && g_iter_rate="$(awk -v s="$g_iter" 'BEGIN { if (s > 0) printf "%.6f", 1 / s }')"
  [[ -n "$t_iter" ]] && t_iter_rate="$(awk -v s="$t_iter" 'BEGIN { if (s > 0) printf "%.6f", 1 / s }')"
  local line
  line="pretraining samples/s $(ratio "$g_train" "$t_train") (grove ${g_train:-?}, torch ${t_train:-?})"
  line+="; sampling images/s $(ratio "$g_samp" "$t_samp") (${g_samp:-?} vs ${t_samp:-?})"
  line+="; rollout images/s $(ratio "$g_roll" "$t_roll") (${g_roll:-?} vs ${t_roll:-?})"
  line+="; Flow-GRPO iteration $(ratio "$g_iter_rate" "$t_iter_rate") (${g_iter:-?} s vs ${t_iter:-?} s)"
  fact grove_over_torch "$line"
  record bench_ratio info "grove/PyTorch (> 1: grove faster): $line"
}

if ((!quick)); then
  run_bench bench_unet_cuda 40 cuda bench_unet 256 10
  # The carried libgrove has no oneDNN (gpu-prepare.sh): this CPU figure is the reference kernels
  # (~10x below oneDNN on this project's CPU machine), hence the small batch.
  run_bench bench_unet_cpu_reference 30 cpu bench_unet 16 3
  # two iterations: the first creates the cuDNN plans; the ratio below uses the second
  run_bench bench_grpo_cuda 75 cuda bench_grpo "$root/configs/align/mnist-flowgrpo.yaml" 2
  # PyTorch twin of unet-s on the same GPU (bench/gpu/torch_unet_s.py): pretraining at batch 256,
  # the default config's rollout and one Flow-GRPO iteration (1 warm-up + 2 timed), then the ratios
  py=""
  for p in python3 /usr/bin/python3; do
    if command -v "$p" >/dev/null && env -u LD_LIBRARY_PATH "$p" -c 'import torch' 2>/dev/null; then
      py="$p"
      break
    fi
  done
  if [[ -z "$py" ]]; then
    record bench_torch_unet skipped "torch missing: no python3 with torch here"
  elif (($(left) < 75)); then
    record bench_torch_unet skipped "not enough time left"
  else
    rc=0
    env -u LD_LIBRARY_PATH timeout 75 "$py" "$root/bench/gpu/torch_unet_s.py" 256 10 cuda 3 \
      >"$logs/bench_torch_unet.txt" 2>&1 || rc=$?
    figures="$(grep -E 'parameters|forward|step|flow-grpo .*/s|per iteration' \
      "$logs/bench_torch_unet.txt" | tr -s ' ' | tr '\n' ';' | head -c 600 || true)"
    if grep -q 'torch missing\|no CUDA device' "$logs/bench_torch_unet.txt"; then
      record bench_torch_unet skipped "$(head -1 "$logs/bench_torch_unet.txt")"
    else
      record bench_torch_unet info "exit $rc: ${figures:-$(tail -1 "$logs/bench_torch_unet.txt")}"
    fi
  fi
  bench_ratios
fi
