#!/usr/bin/env bash
# bench/algorithms: every algorithm preset on the MNIST task config at an equal CPU-time budget
# (issue #7), then the held-out gold-judge score of the final EMA weights on fixed seeds.
#
#   bench/algorithms/run.sh [BUDGET_SECONDS] [PRESET...]    # default 300 s x 2 threads, every preset
#
# Per preset, as the preset file writes it (the task config's own algorithm.overrides are cleared):
# `grove train` with run.threads = THREADS (default 2) and OMP_WAIT_POLICY=passive, stopped by
# SIGINT once the process's CPU time (user + sys of all its threads, /proc/PID/stat) reaches
# BUDGET x THREADS seconds. On an idle machine that equals BUDGET seconds of wall-clock with both
# threads busy; on a shared machine it charges each preset for the work it did, not for the other
# jobs' load (README, "Budget"). SIGINT stops at the next iteration boundary (last.h5 is the last
# completed iteration); a kill follows 120 s of wall-clock later. eval.every 0 (no in-training
# evals, so the budget is spent training; DenseGRPO's calibration phase counts against it), then
# `grove eval --ckpt last.h5 -n N_EVAL` (held-out prompts, gold judge, seed 0: the same noise for
# every model; it runs while the next preset trains) and the same for the base model. Both CPU and wall seconds are recorded in
# runs/<preset>.wall.json. summarize.py writes results.csv, results.md and results.svg (train
# reward vs iteration and vs NFE; gold accuracy gain with its 95 % interval).
# Output: runs/bench-algorithms/ (or $OUT: runs/, evals, tables); the tables are copied to
# bench/algorithms/results.{csv,md,svg} (unless OUT is set). N_EVAL overrides the 1,000 eval
# samples, THREADS the 2 threads. Deliberately not here: plotting libraries (the SVG is written
# by hand) and GPU runs.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
build="${GROVE_BUILD_DIR:-$repo/build}"
budget="${1:-300}"
shift || true
presets=("$@")
[ ${#presets[@]} -gt 0 ] || presets=(flow_grpo flow_grpo_fast mix_grpo dance_grpo tempflow dense_grpo branch_grpo branch_grpo_mix)
n_eval="${N_EVAL:-1000}"
threads="${THREADS:-2}"
export OMP_WAIT_POLICY=passive           # idle OpenMP threads sleep: CPU time counts work only
tick=$(getconf CLK_TCK)
cpu_limit=$((budget * threads))
# CPU seconds (user + sys, all threads, plus reaped children) of process $1; empty once it is gone
cpu_of() {
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
    # fields after "(comm) ": utime stime cutime cstime are the 12th..15th
    echo "${stat##*) }" | awk -v t="$tick" '{ printf "%.2f", ($12 + $13 + $14 + $15) / t }'
}
out="${OUT:-$repo/runs/bench-algorithms}"   # runs and evals (ignored by git)
mkdir -p "$out/runs" "$out/eval"
cd "$repo"
config=configs/align/mnist-flowgrpo.yaml
base=models/weights/mnist-unet-s.h5
[ -s "$out/eval/base.json" ] || "$build/grove" eval "$config" --ckpt "$base" -n "$n_eval" > "$out/eval/base.json"
for spec in "${presets[@]}"; do
    # "preset" or "name=preset:key=value,key=value" (e.g. dense_nocal=dense_grpo:dense.calibrate=false)
    p="${spec%%=*}"; preset="$p"; extra=()
    if [[ "$spec" == *=*:* ]]; then
        rest="${spec#*=}"; preset="${rest%%:*}"
        IFS=, read -r -a kv <<< "${rest#*:}"
        for x in "${kv[@]}"; do extra+=(--set "$x"); done
    fi
    dir="$out/runs/$p"
    rm -rf "$dir"
    start=$(date +%s.%N)
    "$build/grove" train "$config" --set "algorithm.preset=$preset" \
        --set 'algorithm.overrides={}' --set "run.dir=$dir" --set "run.threads=$threads" \
        --set train.iterations=100000 --set eval.every=0 --set 'eval_rewards=[]' \
        --set checkpoint.every=0 "${extra[@]}" 2> "$out/runs/$p.log" &
    pid=$!
    cpu=0; sent=""
    # the budget runs out (expected): SIGINT stops at the next iteration boundary, a kill 120 s later
    while kill -0 "$pid" 2>/dev/null; do
        c=$(cpu_of "$pid"); [ -z "$c" ] || cpu=$c
        now=$(date +%s)
        if [ -z "$sent" ] && awk -v c="$cpu" -v l="$cpu_limit" 'BEGIN { exit !(c >= l) }'; then
            kill -INT "$pid" 2>/dev/null || true; sent=$now
        elif [ -n "$sent" ] && [ $((now - sent)) -ge 120 ]; then
            kill -KILL "$pid" 2>/dev/null || true
        fi
        sleep 1
    done
    wait "$pid" || true
    end=$(date +%s.%N)
    echo "{\"preset\": \"$p\", \"budget_s\": $budget, \"threads\": $threads, \"cpu_limit_s\": $cpu_limit, \"cpu_s\": $cpu, \"wall_s\": $(echo "$end - $start" | bc)}" > "$out/runs/$p.wall.json"
    # the eval of this preset overlaps the next preset's training (its budget is CPU time: unaffected)
    if [ -s "$dir/last.h5" ]; then
        ( "$build/grove" eval "$config" --ckpt "$dir/last.h5" -n "$n_eval" > "$out/eval/$p.json"
          echo "$p: $(cat "$out/eval/$p.json")" ) &
    else
        echo "{\"missing\": true}" > "$out/eval/$p.json" # stopped before its first iteration
    fi
done
wait
python3 "$repo/bench/algorithms/summarize.py" "$out" "${presets[@]%%=*}"
[ -n "${OUT:-}" ] || cp "$out/results.csv" "$out/results.md" "$out/results.svg" "$repo/bench/algorithms/"
