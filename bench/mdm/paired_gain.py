#!/usr/bin/env python3
"""Paired solve-rate gain of a Sudoku run: BEFORE and AFTER are per-puzzle CSVs (test_row,solved,
reward) written by the trainer (<run dir>/eval-<iteration>.csv) or by `grove sudoku --per-puzzle`.

Both evals must cover the same held-out puzzles with the same eval seed: the eval's sampler draws
are addressed by (seed, puzzle slot), so puzzle i sees the same noise before and after and the
per-puzzle difference d_i = solved_after_i - solved_before_i is a paired sample.

Printed (one JSON line): n, solved before/after, the discordant pairs (gained: 0 -> 1, lost:
1 -> 0), the gain in points, and two 95 % intervals of it:
  - "normal": mean(d) +- 1.96 * sd(d) / sqrt(n) (sd with n - 1), the primary interval;
  - "bootstrap": the 2.5 / 97.5 percentiles of mean(d) over 10,000 resamples of the puzzles
    (Python's random with seed 1, so the interval is reproducible).
Also the paired difference of the mean `sudoku` reward (continuous, more sensitive than the solve
rate: a diagnostic) with its normal interval.
Standard library only. Deliberately not here: running the evals (grove train / grove sudoku)."""
import csv
import json
import math
import random
import sys


def read(path):
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows or "test_row" not in rows[0] or "solved" not in rows[0]:
        sys.exit(f"{path}: not a per-puzzle eval CSV (test_row,solved,reward)")
    out, reward = {}, {}
    for line, r in enumerate(rows, start=2):
        try:
            out[int(r["test_row"])] = int(r["solved"])
            reward[int(r["test_row"])] = float(r.get("reward", "nan"))
        except ValueError:
            sys.exit(f"{path}:{line}: bad row {r}")
    return out, reward


def normal_interval(d):
    n = len(d)
    mean = sum(d) / n
    sd = math.sqrt(sum((x - mean) ** 2 for x in d) / (n - 1)) if n > 1 else 0.0
    return mean, 1.96 * sd / math.sqrt(n)


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: paired_gain.py BEFORE.csv AFTER.csv")
    (before, rb), (after, ra) = read(sys.argv[1]), read(sys.argv[2])
    if sorted(before) != sorted(after):
        sys.exit(f"{sys.argv[1]} and {sys.argv[2]} cover different puzzles: not a paired comparison")
    keys = sorted(before)
    d = [after[k] - before[k] for k in keys]
    n = len(d)
    mean, half = normal_interval(d)
    rmean, rhalf = normal_interval([ra[k] - rb[k] for k in keys])
    rng = random.Random(1)
    boots = sorted(sum(d[rng.randrange(n)] for _ in range(n)) / n for _ in range(10000))
    print(json.dumps({
        "n": n, "solved_before": sum(before.values()), "solved_after": sum(after.values()),
        "gained": sum(1 for x in d if x > 0), "lost": sum(1 for x in d if x < 0),
        "gain_pts": round(100 * mean, 2),
        "normal_ci95_pts": [round(100 * (mean - half), 2), round(100 * (mean + half), 2)],
        "bootstrap_ci95_pts": [round(100 * boots[249], 2), round(100 * boots[9749], 2)],
        "reward_before": round(sum(rb.values()) / n, 4), "reward_after": round(sum(ra.values()) / n, 4),
        "reward_gain": round(rmean, 4), "reward_gain_ci95": [round(rmean - rhalf, 4), round(rmean + rhalf, 4)],
    }))


if __name__ == "__main__":
    main()
