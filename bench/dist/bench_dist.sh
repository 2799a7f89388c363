#!/usr/bin/env bash
# bench/dist: unet-s pretraining step time, `grove train` (the default Flow-GRPO config) and the
# masked-diffusion `grove train` (configs/align/sudoku-diffu-grpo.yaml) iteration time, one process x 2 threads vs `mpirun -np 2` x 1 thread (and one process x 1 thread
# for reference), all with run.shards = 2 so the three compute the same split; plus the
# communication share (comm_s: time inside collectives, waiting for the other rank included) of
# the 2-rank runs. Prints figures; never fails on time.
#
#   bench/dist/bench_dist.sh [BUILD_DIR] [STEPS] [ITERATIONS] [SUDOKU_ITERATIONS]
#     defaults: build, 20 pretraining steps (first 3 dropped), 5 train iterations (first dropped),
#     4 Sudoku iterations (first dropped); 0 skips that part
#
# Not here: the paper estimate for GPUs (README "Scaling").
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$root/build}
steps=${2:-20}
iterations=${3:-5}
sudoku_iterations=${4:-4}
grove=$build/grove
cfg=$root/configs/pretrain/mnist-unet.yaml
tmp=$(mktemp -d /tmp/grove-bench-dist-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_WAIT_POLICY=passive
common=(--set run.shards=2 --set train.steps=100000 --set eval.every=0 --set checkpoint.every=100000
        --set dist.check_every=0 --set 'export=""' --stop-after "$steps")

# median step time and mean comm_s over the step records after the first 3
summarize() {
  awk -v skip=3 '
    /"optimizer_step"/ {
      match($0, /"wall_s":[0-9.e+-]+/); w = substr($0, RSTART + 9, RLENGTH - 9) + 0
      c = 0; if (match($0, /"comm_s":[0-9.e+-]+/)) c = substr($0, RSTART + 9, RLENGTH - 9) + 0
      if (++n > skip) print w - prev, c
      prev = w
    }' "$1" | sort -n | awk '
    { dt[++k] = $1; cs += $2 }
    END {
      med = (k % 2) ? dt[(k + 1) / 2] : (dt[k / 2] + dt[k / 2 + 1]) / 2
      printf "%8.1f ms/step  %7.1f images/s  comm %5.1f ms/step (%4.1f%%)\n", 1000 * med, 64 / med,
             1000 * cs / k, 100 * (cs / k) / med
    }'
}

# The three set-ups of one command: 1 process x 2 threads, 1 process x 1 thread, 2 ranks x 1 thread
# (runs in $tmp/<tag>-{t2,t1,r2}), each summarized by SUMMARIZER; then whether the 1-thread and the
# 2-rank metrics are identical except the timing fields.
#   three_ways SUMMARIZER TAG WHAT_IS_COMPARED grove-subcommand CONFIG ARGS...
three_ways() {
  local summarizer=$1 tag=$2 what=$3; shift 3
  "$grove" "$@" --set run.dir="$tmp/$tag-t2" --set run.threads=2 >/dev/null 2>&1
  printf '%-26s' "1 process x 2 threads:"; "$summarizer" "$tmp/$tag-t2/metrics.jsonl"
  "$grove" "$@" --set run.dir="$tmp/$tag-t1" --set run.threads=1 >/dev/null 2>&1
  printf '%-26s' "1 process x 1 thread:"; "$summarizer" "$tmp/$tag-t1/metrics.jsonl"
  mpirun --bind-to core -np 2 "$grove" "$@" --set run.dir="$tmp/$tag-r2" --set run.threads=1 \
    >/dev/null 2>&1
  printf '%-26s' "2 ranks x 1 thread:"; "$summarizer" "$tmp/$tag-r2/metrics.jsonl"
  local timing='s/,"(samples_per_s|rollout_tokens_per_s)".*//' # the masked trainer's first timing key
  if cmp -s <(sed -E "$timing" "$tmp/$tag-t1/metrics.jsonl") \
            <(sed -E "$timing" "$tmp/$tag-r2/metrics.jsonl"); then
    echo "$what of '1 process x 1 thread' and '2 ranks x 1 thread': identical"
  else
    echo "$what of '1 process x 1 thread' and '2 ranks x 1 thread': DIFFER"
  fi
}

# stdin: "seconds comm_seconds" per iteration -> the median iteration, samples/s (64 samples) and
# the mean communication share
median_comm() {
  sort -n | awk '
    { dt[++k] = $1; cs += $2 }
    END {
      med = (k % 2) ? dt[(k + 1) / 2] : (dt[k / 2] + dt[k / 2 + 1]) / 2
      printf "%8.2f s/iteration  %6.1f samples/s  comm %6.2f s/iteration (%4.1f%%)\n", med,
             64 / med, cs / k, 100 * (cs / k) / med
    }'
}

train_part() {
  # grove train, configs/align/mnist-flowgrpo.yaml: 8 prompts x 8 chains, 10 steps, 8 minibatches
  # of 8 roots per iteration; no evals (they run on rank 0 alone), no checkpoint but last.h5
  local acfg=$root/configs/align/mnist-flowgrpo.yaml
  local tcommon=(--set run.shards=2 --set train.iterations=100000 --set 'eval_rewards=[]'
                 --set checkpoint.every=0 --set dist.check_every=0 --stop-after "$iterations")
  # median iteration time and mean comm_s over the iteration records after the first
  tsummarize() {
    awk -v skip=1 '
      /"optimizer_step"/ {
        match($0, /"wall_s":[0-9.e+-]+/); w = substr($0, RSTART + 9, RLENGTH - 9) + 0
        c = 0; if (match($0, /"comm_s":[0-9.e+-]+/)) c = substr($0, RSTART + 9, RLENGTH - 9) + 0
        if (++n > skip) print w - prev, c
        prev = w
      }' "$1" | median_comm
  }
  echo "grove train (mnist-flowgrpo: 64 samples, 10 steps), 2 shards of 4 prompts, $iterations iterations (median of the last $((iterations - 1)))"
  three_ways tsummarize train "metrics (timing aside)" train "$acfg" "${tcommon[@]}"
}
if [ "$iterations" -gt 1 ]; then train_part; fi

sudoku_part() {
  # grove train, configs/align/sudoku-diffu-grpo.yaml: 8 puzzles x 8 samples, 12 sampler steps,
  # 2 inner epochs of 4 minibatches of 16; no evals (rank 0 alone), last.h5 only
  local scfg=$root/configs/align/sudoku-diffu-grpo.yaml
  local scommon=(--set run.shards=2 --set train.iterations=100000 --set eval.puzzles=0
                 --set checkpoint.every=100000 --set dist.check_every=0 --stop-after "$sudoku_iterations")
  # median iteration time (rollout + logp_old + train seconds) and mean comm_s after the first
  ssummarize() {
    awk -v skip=1 '
      /"optimizer_step"/ {
        t = 0
        n_ = split("rollout_s logp_old_s train_s", keys, " ")
        for (i = 1; i <= n_; ++i)
          if (match($0, "\"" keys[i] "\":[0-9.e+-]+")) t += substr($0, RSTART + length(keys[i]) + 3, RLENGTH - length(keys[i]) - 3)
        c = 0; if (match($0, /"comm_s":[0-9.e+-]+/)) c = substr($0, RSTART + 9, RLENGTH - 9) + 0
        if (++n > skip) print t, c
      }' "$1" | median_comm
  }
  echo "grove train (sudoku-diffu-grpo: 64 samples, 12 steps), 2 shards of 4 puzzles, $sudoku_iterations iterations (median of the last $((sudoku_iterations - 1)))"
  three_ways ssummarize sudoku "metrics (timing aside)" train "$scfg" "${scommon[@]}"
}
if [ "$sudoku_iterations" -gt 1 ]; then sudoku_part; fi
if [ "$steps" -lt 4 ]; then exit 0; fi

echo "unet-s pretraining, batch 64 = 2 shards of 32, $steps steps (median of the last $((steps - 3)))"
three_ways summarize pretrain "losses and grad norms" pretrain "$cfg" "${common[@]}"

# the all-reduce alone, both ranks ready (no load imbalance): unet-s and a 100x larger gradient
mpirun --bind-to core -np 2 "$build/bench/bench_allreduce" 499617 30
mpirun --bind-to core -np 2 "$build/bench/bench_allreduce" 49961700 5
